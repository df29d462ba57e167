# Per experiment, {out}/results.json: every configured benchmark, held-out success per stage, the per-stage
# benchmarks' scores per stage and deltas against base, provenance.
# The invocation's experiment also gets the headline copy results/<model>.json, after its report.html.


def training_files(wc):
    return [stage_metrics(wc.out, s) for s in cfg_of(wc).train.stages]


rule report:
    input:
        cfg="{out}/config.json",
        benchmarks=benchmark_files,
        heldout=lambda wc: expand("{out}/train/eval_envs/{stage}.json", out=wc.out,
                                  stage=["base"] + cfg_of(wc).train.stages),
        training=training_files,
        data=["{out}/data/sft.parquet", "{out}/data/rl.parquet", "{out}/envs/manifest.json"],
        contamination="{out}/evals/contamination.json",
        stage_benchmarks=stage_benchmark_files,
    output:
        "{out}/results.json",
    params:
        training=lambda wc: " ".join(f"{s}={stage_metrics(wc.out, s)}" for s in cfg_of(wc).train.stages),
        stage_benchmarks=lambda wc: " ".join(f"{s}={wc.out}/evals/stages/{s}/{b}.json"
                                             for s, b in stage_benchmark_runs(cfg_of(wc))),
    log:
        "{out}/logs/report.log",
    shell:
        "{ENVFACTORY} report --config {input.cfg} --benchmarks {input.benchmarks} --heldout {input.heldout}"
        " --training {params.training} --data {input.data} --contamination {input.contamination}"
        " --stage-benchmarks {params.stage_benchmarks} --out {output} > {log} 2>&1"


# {out}/report.html: the experiment's page (held-out success per stage, GRPO reward, benchmarks with their labels,
# the environment funnel) from results.json; the PNGs beside it are also registered for `snakemake --report`.
EXPERIMENT_PLOTS = ("heldout", "reward_curve", "funnel")


rule experiment_report:
    input:
        results="{out}/results.json",
        cfg="{out}/config.json",
        manifest="{out}/envs/manifest.json",
        rl=lambda wc: stage_metrics(wc.out, "rl") if "rl" in cfg_of(wc).train.stages else [],
    output:
        html="{out}/report.html",
        plots=[report(f"{{out}}/plots/{name}.png", category="{out}", caption="../docs/experiment_report_caption.rst")
               for name in EXPERIMENT_PLOTS],
    log:
        "{out}/logs/experiment_report.log",
    shell:
        "{sys.executable} -m envfactory.experiment_report {wildcards.out} --html {output.html} > {log} 2>&1"


rule headline:
    """results/<model>.json for every model card (common.smk: `model_experiment`); its experiment's report.html
    is built first, so the default target ends with the page."""
    input:
        results=lambda wc: f"{HEADLINES[wc.model].out_dir()}/results.json",
        page=lambda wc: f"{HEADLINES[wc.model].out_dir()}/report.html",
    output:
        f"{CFG.results_dir}/{{model}}.json",
    run:
        from envfactory.io import atomic_write_text

        atomic_write_text(output[0], Path(input.results).read_text())


# Sweeps: {sweep_dir}/report.html (results/<sweep>/report.html) over every point of the sweep. The PNGs are also
# registered for `snakemake --report`.
SWEEP_DIRS = {next(iter(points.values())).results_dir: name for name, points in SWEEP_POINTS.items()}


wildcard_constraints:
    sweep_dir="|".join(re.escape(d) for d in SWEEP_DIRS) or "(?!)",


def sweep_points(wc):
    return list(SWEEP_POINTS[SWEEP_DIRS[wc.sweep_dir]])


rule sweep_report:
    input:
        spec=lambda wc: str(SWEEPS[SWEEP_DIRS[wc.sweep_dir]][1]),
        results=lambda wc: [f"{o}/results.json" for o in sweep_points(wc)],
        rl=lambda wc: [stage_metrics(o, "rl") for o in sweep_points(wc) if "rl" in POINTS[o].train.stages],
    output:
        html="{sweep_dir}/report.html",
        summary="{sweep_dir}/summary.json",
        plots=[report(f"{{sweep_dir}}/plots/{name}.png", category="{sweep_dir}", caption="../docs/report_caption.rst")
               for name in ("main", "reward_curves", "funnel")],
    params:
        points=lambda wc: " ".join(sweep_points(wc)),
    log:
        "{sweep_dir}/logs/sweep_report.log",
    shell:
        "{ENVFACTORY} sweep report --spec {input.spec} --points {params.points} --out {output.html} > {log} 2>&1"
