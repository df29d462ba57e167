# Stage `graph`: the tool dependency graph of the admitted environments.


rule graph:
    input:
        cfg=CONFIG_JSON,
        manifest=MANIFEST,
    output:
        GRAPH,
    log:
        f"{OUT}/logs/graph.log",
    shell:
        "{ENVFACTORY} data graph --config {input.cfg} --manifest {input.manifest} --out {output} > {log} 2>&1"
