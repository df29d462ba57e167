# Stages `sample` -> `queries` -> `rollouts` -> `datasets`: gold-verified chains, queries with calibrated
# refinement, trajectories (gold + teacher when configured), and the SFT / RL Parquet datasets.


rule sample:
    input:
        cfg=CONFIG_JSON,
        manifest=MANIFEST,
        graph=GRAPH,
    output:
        CHAINS,
    log:
        f"{OUT}/logs/sample.log",
    shell:
        "{ENVFACTORY} data sample --config {input.cfg} --manifest {input.manifest} --graph {input.graph}"
        " --out {output} > {log} 2>&1"


rule queries:
    input:
        cfg=CONFIG_JSON,
        manifest=MANIFEST,
        chains=CHAINS,
    output:
        QUERIES,
    log:
        f"{OUT}/logs/queries.log",
    shell:
        "{ENVFACTORY} data queries --config {input.cfg} --manifest {input.manifest} --chains {input.chains}"
        " --out {output} > {log} 2>&1"


rule rollouts:
    input:
        cfg=CONFIG_JSON,
        manifest=MANIFEST,
        chains=CHAINS,
        queries=QUERIES,
    output:
        TRAJECTORIES,
    log:
        f"{OUT}/logs/rollouts.log",
    shell:
        "{ENVFACTORY} data rollouts --config {input.cfg} --manifest {input.manifest} --chains {input.chains}"
        " --queries {input.queries} --out {output} > {log} 2>&1"


rule datasets:
    input:
        cfg=CONFIG_JSON,
        manifest=MANIFEST,
        chains=CHAINS,
        queries=QUERIES,
        trajectories=TRAJECTORIES,
    output:
        sft=SFT_DATA,
        rl=RL_DATA,
    log:
        f"{OUT}/logs/datasets.log",
    shell:
        "{ENVFACTORY} data datasets --config {input.cfg} --manifest {input.manifest} --chains {input.chains}"
        " --queries {input.queries} --trajectories {input.trajectories} --out {DATA_DIR} > {log} 2>&1"
