# Training: `sft` -> `rl` on the offered view of the datasets, and `eval_envs` (held-out environment success)
# for the base model and every trained stage. GPUs come from the model card (envfactory/train/cards/<model>.yaml) as the
# `gpu` resource (the SLURM profile turns it into the allocation); with more than one GPU the trainer is started
# by `accelerate launch` inside that allocation, with the card's DeepSpeed ZeRO config. 0 GPUs = CPU.

from envfactory.train.model_card import load_card

card = load_card


def train_gpus(wc):
    return card(cfg_of(wc).train.model).gpus


def eval_gpus(wc):
    return min(train_gpus(wc), 1)


def cpu_trainer_threads(wc):
    """On CPU a trainer takes every core, so nothing is scheduled beside it: training uses all cores anyway,
    and its peak memory (SFT ~5.6 GB, full-vocabulary logits) plus an evaluation beside it came near 8 GB."""
    return workflow.cores if train_gpus(wc) == 0 else 1


def train_mem_mb(wc):
    return max(8000, int(card(cfg_of(wc).train.model).params_b * 60000))  # ~60 GB RAM per 1B params (ZeRO-3 offload)


def trainer(wc):
    gpus = train_gpus(wc)
    return (f"{sys.executable} -m accelerate.commands.launch --num_processes {gpus} -m envfactory"
            if gpus > 1 else ENVFACTORY)


rule sft:
    input:
        cfg="{out}/config.json",
        data="{out}/data/sft.parquet",
    output:
        "{out}/train/sft/metrics.json",
    params:
        launch=trainer,
    log:
        "{out}/logs/sft.log",
    threads: cpu_trainer_threads
    resources:
        gpu=train_gpus,
        mem_mb=train_mem_mb,
    shell:
        "{params.launch} train sft --config {input.cfg} --data {input.data} --out {output} > {log} 2>&1"


rule rl:
    input:
        cfg="{out}/config.json",
        manifest="{out}/envs/manifest.json",
        data="{out}/data/rl.parquet",
        init=lambda wc: stage_metrics(wc.out, "sft") if "sft" in cfg_of(wc).train.stages else [],
    output:
        "{out}/train/rl/metrics.json",
    params:
        launch=trainer,
        init=lambda wc, input: input.init if input.init else "",
    log:
        "{out}/logs/rl.log",
    threads: cpu_trainer_threads
    resources:
        gpu=train_gpus,
        mem_mb=train_mem_mb,
    shell:
        "{params.launch} train rl --config {input.cfg} --manifest {input.manifest} --data {input.data}"
        " --init {params.init:q} --out {output} > {log} 2>&1"


rule eval_envs:
    input:
        cfg="{out}/config.json",
        manifest="{out}/envs/manifest.json",
        data="{out}/data/rl.parquet",
        model=lambda wc: stage_metrics(wc.out, wc.stage),
    output:
        "{out}/train/eval_envs/{stage}.json",
    params:
        model=lambda wc, input: f"--model {input.model}" if input.model else "",
    log:
        "{out}/logs/eval_envs_{stage}.log",
    resources:
        gpu=eval_gpus,
    shell:
        "{ENVFACTORY} eval-envs --config {input.cfg} --manifest {input.manifest} --data {input.data}"
        " {params.model} --stage {wildcards.stage} --out {output} > {log} 2>&1"
