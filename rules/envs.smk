# Stage `envs`: EnvGen synthesis (when an LLM provider is configured), then admission of catalog, extra
# and synthesized environments after sandbox verification.


rule envgen:
    input:
        cfg="{out}/config.json",
    output:
        report="{out}/envgen/report.json",
    log:
        "{out}/logs/envgen.log",
    shell:
        "{ENVFACTORY} envgen --config {input.cfg} --out {wildcards.out}/envgen > {log} 2>&1"


rule envs:
    input:
        cfg="{out}/config.json",
        envgen="{out}/envgen/report.json",
        packages=package_files,
    output:
        "{out}/envs/manifest.json",
    log:
        "{out}/logs/envs.log",
    shell:
        "{ENVFACTORY} envs manifest --config {input.cfg} --envgen {wildcards.out}/envgen --out {output} > {log} 2>&1"
