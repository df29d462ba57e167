# Training: `sft` -> `rl` on the offered view of the datasets, and `eval_envs` (held-out environment success)
# for the base model and every trained stage. GPUs come from the model card (config/models/<model>.yaml) as the
# `gpu` resource (the SLURM profile turns it into the allocation); with more than one GPU the trainer is started
# by `accelerate launch` inside that allocation, with the card's DeepSpeed ZeRO config. 0 GPUs = CPU.
from envfactory.train.model_card import load_card

CARD = load_card(MODEL)
TRAIN_GPUS = CARD.gpus
TRAIN = (f"{sys.executable} -m accelerate.commands.launch --num_processes {TRAIN_GPUS} -m envfactory"
         if TRAIN_GPUS > 1 else ENVFACTORY)
TRAIN_MEM_MB = max(8000, int(CARD.params_b * 60000))  # ~60 GB host RAM per billion params (ZeRO-3 offload)


rule sft:
    input:
        cfg=CONFIG_JSON,
        data=SFT_DATA,
    output:
        f"{TRAIN_DIR}/sft/metrics.json",
    log:
        f"{OUT}/logs/sft.log",
    resources:
        gpu=TRAIN_GPUS,
        mem_mb=TRAIN_MEM_MB,
    shell:
        "{TRAIN} train sft --config {input.cfg} --data {input.data} --out {output} > {log} 2>&1"


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
        gpu=TRAIN_GPUS,
        mem_mb=TRAIN_MEM_MB,
    shell:
        "{TRAIN} train rl --config {input.cfg} --manifest {input.manifest} --data {input.data}"
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
    resources:
        gpu=min(TRAIN_GPUS, 1),
    shell:
        "{ENVFACTORY} eval-envs --config {input.cfg} --manifest {input.manifest} --data {input.data}"
        " {params.model} --stage {wildcards.stage} --out {output} > {log} 2>&1"
