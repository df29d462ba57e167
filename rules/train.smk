# Training: `sft` -> `rl` on the offered view of the datasets, and `eval_envs` (held-out environment success)
# for the base model and every trained stage. GPUs and memory are Snakemake resources (the SLURM profile maps
# them to the allocation); on a CPU-only machine they are 0 and the trainers run on CPU.

TRAIN_GPUS = 0 if not CFG.train.sft.deepspeed else 1


rule sft:
    input:
        cfg=CONFIG_JSON,
        data=SFT_DATA,
    output:
        f"{TRAIN_DIR}/sft/metrics.json",
    log:
        f"{OUT}/logs/sft.log",
    resources:
        gpus=TRAIN_GPUS,
        mem_mb=8000,
    shell:
        "{ENVFACTORY} train sft --config {input.cfg} --data {input.data} --out {output} > {log} 2>&1"


rule rl:
    input:
        cfg=CONFIG_JSON,
        manifest=MANIFEST,
        data=RL_DATA,
        init=stage_metrics("sft") if "sft" in STAGES else [],
    output:
        f"{TRAIN_DIR}/rl/metrics.json",
    params:
        init=lambda wc, input: input.init if input.init else "",
    log:
        f"{OUT}/logs/rl.log",
    resources:
        gpus=TRAIN_GPUS,
        mem_mb=12000,
    shell:
        "{ENVFACTORY} train rl --config {input.cfg} --manifest {input.manifest} --data {input.data}"
        " --init {params.init:q} --out {output} > {log} 2>&1"


rule eval_envs:
    input:
        cfg=CONFIG_JSON,
        manifest=MANIFEST,
        data=RL_DATA,
        model=lambda wc: stage_metrics(wc.stage),
    output:
        f"{TRAIN_DIR}/eval_envs/{{stage}}.json",
    wildcard_constraints:
        stage="base|sft|rl",
    params:
        model=lambda wc, input: f"--model {input.model}" if input.model else "",
    log:
        f"{OUT}/logs/eval_envs_{{stage}}.log",
    shell:
        "{ENVFACTORY} eval-envs --config {input.cfg} --manifest {input.manifest} --data {input.data}"
        " {params.model} --stage {wildcards.stage} --out {output} > {log} 2>&1"
