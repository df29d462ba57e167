# EnvFactory DAG. Stages live in rules/*.smk; `rule all` targets the furthest stage implemented so far.
from snakemake.utils import validate

configfile: "config/config.yaml"
validate(config, "config/schema.json", set_default=False)  # defaults come from the pydantic model

include: "rules/common.smk"
include: "rules/envs.smk"
include: "rules/graph.smk"
include: "rules/data.smk"


rule all:
    input:
        MANIFEST,
        SFT_DATA,
        RL_DATA,
