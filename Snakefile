# EnvFactory DAG. Stages live in rules/*.smk; `rule all` targets the headline results/<model>.json.
from snakemake.utils import validate

configfile: "config/config.yaml"
validate(config, "config/schema.json", set_default=False)  # defaults come from the pydantic model

include: "rules/common.smk"
include: "rules/envs.smk"
include: "rules/graph.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    input:
        HEADLINE,
