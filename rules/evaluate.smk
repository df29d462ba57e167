# Public benchmarks on the final model: one rule, one output per benchmark ({out}/evals/<bench>.json).
# Adapters whose pins conflict with the training stack (BFCL-v3, tau2) build and reuse their own virtualenv.
# `evaluation.per_stage` benchmarks (capability) also run on the base model and every earlier trained stage
# ({out}/evals/stages/<stage>/<bench>.json), so the report can give each trained stage's delta against base.


def benchmark_files(wc):
    return expand("{out}/evals/{bench}.json", out=wc.out, bench=cfg_of(wc).evaluation.benchmarks)


def stage_benchmark_runs(cfg):
    """(stage, bench) of the per-stage runs: every stage but the final one, whose run is eval_bench's."""
    ev = cfg.evaluation
    stages = ["base"] + cfg.train.stages
    return [(s, b) for s in stages[:-1] for b in ev.per_stage if b in ev.benchmarks]


def stage_benchmark_files(wc):
    return [f"{wc.out}/evals/stages/{s}/{b}.json" for s, b in stage_benchmark_runs(cfg_of(wc))]


rule eval_bench:
    input:
        cfg="{out}/config.json",
        model=lambda wc: stage_metrics(wc.out, final_stage(cfg_of(wc))),
    output:
        "{out}/evals/{bench}.json",
    params:
        model=lambda wc, input: f"--model {input.model}" if input.model else "",
        name=lambda wc: f"{cfg_of(wc).train.model}-{final_stage(cfg_of(wc))}",
    log:
        "{out}/logs/eval_{bench}.log",
    resources:
        gpu=eval_gpus,
    shell:
        "{ENVFACTORY} eval {wildcards.bench} --config {input.cfg} {params.model} --name {params.name}"
        " --out {output} > {log} 2>&1"


rule eval_bench_stage:
    """A per-stage benchmark on the base model or an earlier trained stage (the final stage's is eval_bench's)."""
    input:
        cfg="{out}/config.json",
        model=lambda wc: stage_metrics(wc.out, wc.stage),
    output:
        "{out}/evals/stages/{stage}/{bench}.json",
    params:
        model=lambda wc, input: f"--model {input.model}" if input.model else "",
        name=lambda wc: f"{cfg_of(wc).train.model}-{wc.stage}",
    log:
        "{out}/logs/eval_{bench}_{stage}.log",
    resources:
        gpu=eval_gpus,
    shell:
        "{ENVFACTORY} eval {wildcards.bench} --config {input.cfg} {params.model} --name {params.name}"
        " --stage {wildcards.stage} --out {output} > {log} 2>&1"


rule contamination:
    """Training environments vs benchmark backends (tool names, signatures, scenario values, mirrored backends,
    also among imported environments that were offered but not admitted). After the
    evaluations, so the isolated benchmarks' venvs (BFCL-v3, tau2 data) exist and are checked too."""
    input:
        cfg="{out}/config.json",
        manifest="{out}/envs/manifest.json",
        evals=benchmark_files,
    output:
        "{out}/evals/contamination.json",
    log:
        "{out}/logs/contamination.log",
    shell:
        "{ENVFACTORY} contamination {input.manifest} --config {input.cfg} --out {output} > {log} 2>&1"
