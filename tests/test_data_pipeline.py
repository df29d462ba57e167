"""The data stages on the default catalog, offline: acceptance numbers, replay of every row, datasets."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from envfactory.config import ExperimentConfig
from envfactory.env.manifest import admitted_packages, build_manifest
from envfactory.graph.stage import run_graph_stage
from envfactory.querygen import sampling, stages
from envfactory.querygen.query import determines, make_query
from envfactory.querygen.sampling import read_chains

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    cfg = ExperimentConfig.model_validate({"experiment": "data", "tracking": {"enabled": False},
                                           "data": {"compare_attempts": 300}})
    manifest = root / "envs" / "manifest.json"
    build_manifest(cfg, manifest, log=lambda _: None)
    d = root / "data"
    graph = run_graph_stage(cfg, manifest, root / "graph" / "graph.json")
    sample = sampling.run_sample_stage(cfg, manifest, root / "graph" / "graph.json", d / "chains.parquet",
                                       log=lambda _: None)
    queries = stages.run_queries_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet", log=lambda _: None)
    rollouts = stages.run_rollouts_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet",
                                         d / "trajectories.parquet", log=lambda _: None)
    datasets = stages.run_datasets_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet",
                                         d / "trajectories.parquet", d, log=lambda _: None)
    return {"cfg": cfg, "manifest": manifest, "dir": d, "graph": graph, "sample": sample, "queries": queries,
            "rollouts": rollouts, "datasets": datasets}


def test_acceptance_numbers(pipeline):
    s = pipeline["sample"]
    assert s["chains"] >= 1000
    assert s["tool_coverage"] >= 0.90
    lengths = {int(k) for k in s["length_histogram"]}
    assert set(range(1, 7)) <= lengths
    comparison = s["comparison"]
    assert set(comparison) == {"topology", "random_walk"}
    assert comparison["topology"]["dependency_rate"] > 0.8 and comparison["random_walk"]["dependency_rate"] == 0.0


def test_every_row_of_the_default_datasets_replays(pipeline):
    # The datasets stage's replay gate (tests/test_replay_gate.py) ran over every SFT and RL row of the default.
    report = pipeline["datasets"]
    assert report["sft_rows"] >= 1000 and report["replay_failures"] == []
    assert report["replay_rate"] == report["replay_rate_sft"] == report["replay_rate_rl"] == 1.0


def test_datasets_load_with_hf_datasets_and_split_by_env(pipeline):
    import datasets

    d = pipeline["dir"]
    sft = datasets.load_dataset("parquet", data_files=str(d / "sft.parquet"), split="train")
    rl = datasets.load_dataset("parquet", data_files=str(d / "rl.parquet"), split="train")
    msg = sft[0]["messages"]
    assert [m["role"] for m in msg][:2] == ["system", "user"] and msg[-1]["role"] == "assistant"
    assert any(m["tool_calls"] for m in msg) and any(m["role"] == "tool" for m in msg)
    heldout = set(pipeline["datasets"]["heldout_envs"])  # held out by domain: no sibling on the training side
    assert heldout == {"cinema_tickets", "music_streaming", "clinic_appointments", "pharmacy_prescriptions"}
    for row in rl:
        assert (row["split"] == "heldout") == bool(heldout & set(row["envs"]))
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        gold = json.loads(row["gold_calls"])
        assert gold and all({"env", "tool", "name", "arguments"} <= set(g) for g in gold)
        assert set(json.loads(row["expected_state_hash"])) == set(row["envs"])
    assert Counter(rl["split"])["heldout"] > 0 and Counter(rl["split"])["train"] > 0


def test_refinement_check_rejects_lost_values(pipeline):
    chains = read_chains(pipeline["dir"] / "chains.parquet")
    chain = next(c for c in chains if any(c.calls[i].user_args for i in range(len(c.calls))) and c.length >= 2)
    specs = {n: p.spec for n, p in admitted_packages(pipeline["manifest"]).items()}
    for level in (0, 1, 2):
        q = make_query(chain, specs, level, random.Random(0), None, True)
        assert q.determined and q.refined != q.explicit
    assert not determines("Please just handle it for me.", chain)[0]
    report = pipeline["queries"]
    assert report["refiner"] == "rule" and set(report["ambiguity_histogram"]) == {"0", "1", "2"}
