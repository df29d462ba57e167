"""End to end: Snakemake builds the manifest and logs an MLflow parent run with nested rule runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _snakemake(workdir: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ENVFACTORY_CACHE": str(workdir / "cache")}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
                           "--configfile", str(config), "--cores", "2", *extra],
                          capture_output=True, text=True, timeout=900, env=env)


@pytest.mark.slow
def test_dag_builds_manifest_and_tracks_runs(tmp_path):
    db = tmp_path / "mlruns" / "mlflow.db"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"experiment": "e2e", "envs": {"catalog": ["hotel_reservations", "bookstore"]},
                                      "tracking": {"tracking_uri": f"sqlite:///{db}", "experiment_name": "e2e"}}))
    targets = [f"results/e2e/data/{name}.parquet" for name in ("sft", "rl")]  # training has its own e2e test
    proc = _snakemake(tmp_path, config, *targets)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "results" / "e2e" / "envs" / "manifest.json").read_text())
    assert [e["name"] for e in manifest["envs"]] == ["hotel_reservations", "bookstore"] or \
        sorted(e["name"] for e in manifest["envs"]) == ["bookstore", "hotel_reservations"]
    for entry in manifest["envs"]:
        env_dir = tmp_path / "results" / "e2e" / "envs" / entry["path"]
        assert (env_dir / "spec.json").is_file() and (env_dir / "env.py").is_file()
        assert json.loads((env_dir / "report.json").read_text())["verified"] is True

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("e2e")
    runs = client.search_runs([exp.experiment_id])
    dag = [r for r in runs if r.data.tags.get("envfactory.kind") == "dag"]
    rules = [r for r in runs if r.data.tags.get("envfactory.kind") == "rule"]
    assert len(dag) == 1 and dag[0].info.status == "FINISHED"
    by_rule = {r.data.tags["envfactory.rule"]: r for r in rules}
    assert set(by_rule) == {"envgen", "envs", "graph", "sample", "queries", "rollouts", "datasets"}
    assert all(r.data.tags["mlflow.parentRunId"] == dag[0].info.run_id for r in rules)
    envs = by_rule["envs"]
    assert envs.data.metrics["env_count"] == 2
    assert envs.data.metrics["pass_rate"] == 1.0
    assert envs.data.params["config_hash"] == dag[0].data.params["config_hash"]
    assert by_rule["envgen"].data.params["status"] == "skipped"  # offline: said, not faked
    assert manifest["synthesis"]["status"] == "skipped"
    assert by_rule["sample"].data.metrics["chains"] > 0 and "tool_coverage" in by_rule["sample"].data.metrics
    assert by_rule["datasets"].data.metrics["sft_rows"] > 0
    assert (tmp_path / "results" / "e2e" / "data" / "sft.parquet").is_file()

    # Resume: a second invocation finds nothing to do.
    again = _snakemake(tmp_path, config, *targets)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
