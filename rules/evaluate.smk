# Public benchmarks on the final model: one rule, one output per benchmark (evals/<model>/<bench>.json).
# Adapters whose pins conflict with the training stack (BFCL-v3, tau2) build and reuse their own virtualenv.


rule eval_bench:
    input:
        cfg=CONFIG_JSON,
        model=stage_metrics(FINAL_STAGE),
    output:
        f"{EVALS_DIR}/{{bench}}.json",
    wildcard_constraints:
        bench="bfcl|tau2|mcp_atlas|vitabench",
    params:
        model=lambda wc, input: f"--model {input.model}" if input.model else "",
    log:
        f"{OUT}/logs/eval_{{bench}}.log",
    resources:
        gpu=min(TRAIN_GPUS, 1),
    shell:
        "{ENVFACTORY} eval {wildcards.bench} --config {input.cfg} {params.model} --name {MODEL}-{FINAL_STAGE}"
        " --out {output} > {log} 2>&1"


rule contamination:
    """Training environments vs benchmark backends (tool names, signatures, scenario values). After the
    evaluations, so the isolated benchmarks' venvs (BFCL-v3, tau2 data) exist and are checked too."""
    input:
        manifest=MANIFEST,
        evals=expand(f"{EVALS_DIR}/{{bench}}.json", bench=CFG.evaluation.benchmarks),
    output:
        f"{OUT}/evals/contamination.json",
    log:
        f"{OUT}/logs/contamination.log",
    shell:
        "{sys.executable} -m evals.contamination {input.manifest} --out {output} > {log} 2>&1"
