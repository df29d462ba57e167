# Stage `graph`: the tool dependency graph of the admitted environments.


rule graph:
    input:
        cfg="{out}/config.json",
        manifest="{out}/envs/manifest.json",
    output:
        "{out}/graph/graph.json",
    log:
        "{out}/logs/graph.log",
    shell:
        "{ENVFACTORY} data graph --config {input.cfg} --manifest {input.manifest} --out {output} > {log} 2>&1"
