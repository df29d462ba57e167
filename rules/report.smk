# The headline file results/<model>.json: every configured benchmark, held-out success per stage, provenance.


rule report:
    input:
        cfg=CONFIG_JSON,
        benchmarks=expand(f"{EVALS_DIR}/{{bench}}.json", bench=CFG.evaluation.benchmarks),
        heldout=expand(f"{TRAIN_DIR}/eval_envs/{{stage}}.json", stage=["base"] + STAGES),
        training=[stage_metrics(s) for s in STAGES],
        data=[SFT_DATA, RL_DATA, MANIFEST],
        contamination=f"{OUT}/evals/contamination.json",
    output:
        HEADLINE,
    params:
        training=" ".join(f"{s}={stage_metrics(s)}" for s in STAGES),
    log:
        f"{OUT}/logs/report.log",
    shell:
        "{ENVFACTORY} report --config {input.cfg} --benchmarks {input.benchmarks} --heldout {input.heldout}"
        " --training {params.training} --data {input.data} --contamination {input.contamination}"
        " --out {output} > {log} 2>&1"
