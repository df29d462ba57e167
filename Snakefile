# EnvFactory DAG. Stages live in rules/*.smk; `rule all` targets the headline results/<model>.json.
import jsonschema

from envfactory.config import json_schema

configfile: "config/config.yaml"
# Validated against the schema of the live config model (== config/schema.json, plus any registered benchmark
# plugin); defaults come from the pydantic model. `common.smk` then builds the model itself.
try:
    jsonschema.validate(config, json_schema())
except jsonschema.ValidationError as e:
    raise ValueError(f"invalid config at {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}") from None

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
