from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from envfactory.catalog import CATALOG_DIR


@pytest.fixture
def hotel_dir() -> Path:
    return CATALOG_DIR / "hotel_reservations"


def make_package(root: Path, run_body: str, prelude: str = "") -> Path:
    """An environment package whose single tool `run` executes `run_body` (hostile-code corpus)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "scenarios").mkdir(exist_ok=True)
    code = f'''
from envfactory.env import Environment, ToolFailure
{prelude}

class Probe(Environment):
    name = "probe"
    domain = "test"

    def bump(self) -> dict:
        self.state["counter"] += 1
        return {{"counter": self.state["counter"]}}

    def run(self) -> dict:
{textwrap.indent(textwrap.dedent(run_body), " " * 8)}
        return {{"done": True}}
'''
    (root / "env.py").write_text(code)
    empty = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    spec = {"name": "probe", "domain": "test", "description": "probe", "class_name": "Probe",
            "tools": [{"name": "bump", "description": "b", "input_schema": empty},
                      {"name": "run", "description": "r", "input_schema": empty}]}
    (root / "spec.json").write_text(json.dumps(spec))
    (root / "scenarios" / "default.json").write_text(json.dumps({"counter": 0}))
    return root


@pytest.fixture(scope="session")
def tiny_rl_data(tmp_path_factory):
    """(packages, rl.parquet) of a two-environment default pipeline (cinema_tickets held out)."""
    from envfactory.config import ExperimentConfig
    from envfactory.env.manifest import admitted_packages, build_manifest
    from envfactory.graph.stage import run_graph_stage
    from envfactory.querygen import sampling, stages

    root = tmp_path_factory.mktemp("eval")
    cfg = ExperimentConfig.model_validate({
        "experiment": "eval", "tracking": {"enabled": False},
        "envs": {"catalog": ["hotel_reservations", "cinema_tickets"]},
        "data": {"compare_random_walk": False, "attempts_per_tool": 15, "chains_per_tool": 2,
                 "heldout_envs": ["cinema_tickets"]}})
    manifest = root / "envs" / "manifest.json"
    build_manifest(cfg, manifest, log=lambda _: None)
    d = root / "data"
    run_graph_stage(cfg, manifest, root / "graph.json")
    sampling.run_sample_stage(cfg, manifest, root / "graph.json", d / "chains.parquet", log=lambda _: None)
    stages.run_queries_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet", log=lambda _: None)
    stages.run_rollouts_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet", d / "trajectories.parquet",
                              log=lambda _: None)
    stages.run_datasets_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet", d / "trajectories.parquet",
                              d, log=lambda _: None)
    return admitted_packages(manifest), d / "rl.parquet"


@pytest.fixture(scope="module")
def rl_train_setup(tiny_rl_data):
    """(packages, the train split's RL rows, a SessionPool) for the GRPO environment and rollout tests."""
    from envfactory.train.rl import task_rows
    from envfactory.train.rl_env import SessionPool

    packages, rl = tiny_rl_data
    pool = SessionPool(packages)
    yield packages, task_rows(rl, "train"), pool
    pool.close()
