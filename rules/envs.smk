# Stage `envs`: admit the catalog (and, later, synthesized) environments after sandbox verification.


rule envs:
    input:
        cfg=CONFIG_JSON,
        packages=ENV_PACKAGE_FILES,
    output:
        MANIFEST,
    log:
        f"{OUT}/logs/envs.log",
    shell:
        "{ENVFACTORY} envs manifest --config {input.cfg} --out {output} > {log} 2>&1"
