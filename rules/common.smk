# Shared paths, the resolved config and the MLflow parent run of this invocation.
import json
import os
import sys
from pathlib import Path

from envfactory.config import ExperimentConfig
from envfactory import tracking

CFG = ExperimentConfig.model_validate(config)
OUT = str(CFG.out_dir())
CONFIG_JSON = f"{OUT}/config.json"
MANIFEST = f"{OUT}/envs/manifest.json"
GRAPH = f"{OUT}/graph/graph.json"
DATA_DIR = f"{OUT}/data"
CHAINS = f"{DATA_DIR}/chains.parquet"
QUERIES = f"{DATA_DIR}/queries.parquet"
TRAJECTORIES = f"{DATA_DIR}/trajectories.parquet"
SFT_DATA = f"{DATA_DIR}/sft.parquet"
RL_DATA = f"{DATA_DIR}/rl.parquet"
ENVFACTORY = f"{sys.executable} -m envfactory"
TRAIN_DIR = f"{OUT}/train"
MODEL = CFG.train.model
STAGES = list(CFG.train.stages)
FINAL_STAGE = STAGES[-1] if STAGES else "base"
EVALS_DIR = f"{OUT}/evals/{MODEL}"
HEADLINE = f"{CFG.results_dir}/{MODEL}.json"


def stage_metrics(stage):
    """A training stage's metrics.json (its model lives beside it); the base model has none."""
    return f"{TRAIN_DIR}/{stage}/metrics.json" if stage != "base" else []


def _package_files():
    """Files of the selected environment packages: editing one re-runs the envs stage."""
    from envfactory.env.manifest import selected_packages

    return sorted(str(f) for _, pkg in selected_packages(CFG) for f in pkg.files())


ENV_PACKAGE_FILES = _package_files()


rule resolved_config:
    """The validated config as the stages see it; params make a config change re-run downstream rules."""
    output:
        CONFIG_JSON,
    params:
        cfg=json.dumps(CFG.model_dump(mode="json"), sort_keys=True),
    run:
        from envfactory.io import atomic_write_text

        atomic_write_text(output[0], params.cfg + "\n")


onstart:
    tracking.start_parent_run(CFG, targets=sys.argv[1:])

onsuccess:
    tracking.end_parent_run(CFG, "FINISHED")

onerror:
    tracking.end_parent_run(CFG, "FAILED")
