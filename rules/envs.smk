# Stage `envs`: EnvGen synthesis (when an LLM provider is configured), then admission of catalog, extra
# and synthesized environments after sandbox verification.

ENVGEN_DIR = f"{OUT}/envgen"


rule envgen:
    input:
        cfg=CONFIG_JSON,
    output:
        report=f"{ENVGEN_DIR}/report.json",
    log:
        f"{OUT}/logs/envgen.log",
    shell:
        "{ENVFACTORY} envgen --config {input.cfg} --out {ENVGEN_DIR} > {log} 2>&1"


rule envs:
    input:
        cfg=CONFIG_JSON,
        envgen=rules.envgen.output.report,
        packages=ENV_PACKAGE_FILES,
    output:
        MANIFEST,
    log:
        f"{OUT}/logs/envs.log",
    shell:
        "{ENVFACTORY} envs manifest --config {input.cfg} --envgen {ENVGEN_DIR} --out {output} > {log} 2>&1"
