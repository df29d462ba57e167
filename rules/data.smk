# Stages `sample` -> `queries` -> `rollouts` -> `datasets`: gold-verified chains, queries with calibrated
# refinement, trajectories (gold + teacher when configured), and the SFT / RL Parquet datasets.


rule sample:
    input:
        cfg="{out}/config.json",
        manifest="{out}/envs/manifest.json",
        graph="{out}/graph/graph.json",
    output:
        "{out}/data/chains.parquet",
    log:
        "{out}/logs/sample.log",
    shell:
        "{ENVFACTORY} data sample --config {input.cfg} --manifest {input.manifest} --graph {input.graph}"
        " --out {output} > {log} 2>&1"


rule queries:
    input:
        cfg="{out}/config.json",
        manifest="{out}/envs/manifest.json",
        chains="{out}/data/chains.parquet",
    output:
        "{out}/data/queries.parquet",
    log:
        "{out}/logs/queries.log",
    shell:
        "{ENVFACTORY} data queries --config {input.cfg} --manifest {input.manifest} --chains {input.chains}"
        " --out {output} > {log} 2>&1"


rule rollouts:
    input:
        cfg="{out}/config.json",
        manifest="{out}/envs/manifest.json",
        chains="{out}/data/chains.parquet",
        queries="{out}/data/queries.parquet",
    output:
        "{out}/data/trajectories.parquet",
    log:
        "{out}/logs/rollouts.log",
    shell:
        "{ENVFACTORY} data rollouts --config {input.cfg} --manifest {input.manifest} --chains {input.chains}"
        " --queries {input.queries} --out {output} > {log} 2>&1"


# Every SFT and RL row is replayed in a fresh sandbox state first (envfactory/querygen/replay.py); below
# data.min_replay_rate the rule fails and writes neither table. {out}/data/replay_report.json (rates, failing
# rows with their cause) is written either way and is deliberately not an output: a failed job keeps it.
rule datasets:
    input:
        cfg="{out}/config.json",
        manifest="{out}/envs/manifest.json",
        chains="{out}/data/chains.parquet",
        queries="{out}/data/queries.parquet",
        trajectories="{out}/data/trajectories.parquet",
    output:
        sft="{out}/data/sft.parquet",
        rl="{out}/data/rl.parquet",
    log:
        "{out}/logs/datasets.log",
    shell:
        "{ENVFACTORY} data datasets --config {input.cfg} --manifest {input.manifest} --chains {input.chains}"
        " --queries {input.queries} --trajectories {input.trajectories} --out {wildcards.out}/data > {log} 2>&1"
