# EnvFactory DAG. Stages live in rules/*.smk; `rule all` targets the furthest stage implemented so far.
from snakemake.utils import validate

configfile: "config/config.yaml"
validate(config, "config/schema.json")

include: "rules/common.smk"
include: "rules/envs.smk"


rule all:
    input:
        MANIFEST,
