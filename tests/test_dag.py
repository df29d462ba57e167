"""End to end: Snakemake builds the manifest and logs an MLflow parent run with nested rule runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _snakemake(workdir: Path, config: Path, *extra: str, env: dict[str, str] | None = None,
               cores: int = 2, timeout: float = 900, new_session: bool = False) -> subprocess.CompletedProcess:
    """One Snakemake invocation; `env` adds to (or, e.g. ENVFACTORY_CACHE, replaces) the defaults."""
    env = {**os.environ, "ENVFACTORY_CACHE": str(workdir / "cache"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                           "--directory", str(workdir), "--configfile", str(config), "--cores", str(cores), *extra],
                          capture_output=True, text=True, timeout=timeout, env=env, start_new_session=new_session)


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


TINY_TRAINING = {
    "train": {"sft": {"max_steps": 1, "gradient_accumulation_steps": 1, "max_examples": 2, "max_length": 1024},
              "rl": {"max_steps": 1, "num_generations": 2, "prompts_per_step": 1, "max_completion_length": 24,
                     "max_turns": 1, "max_examples": 4},
              "heldout": {"limit": 1, "max_turns": 1, "max_new_tokens": 16}},
    "evaluation": {"limit": 1, "categories": {"bfcl": ["simple"], "vitabench": ["delivery"]}, "max_turns": 2,
                   "max_new_tokens": 24},
}


@pytest.mark.slow
def test_dag_reaches_the_headline_results(tmp_path):
    """Data -> SFT -> GRPO -> held-out eval per stage -> four benchmarks -> results/<model>.json, then resume."""
    db = tmp_path / "mlruns" / "mlflow.db"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "experiment": "headline", "envs": {"catalog": ["hotel_reservations", "cinema_tickets"]},
        "data": {"compare_random_walk": False, "attempts_per_tool": 10, "chains_per_tool": 2,
                 "heldout_envs": ["cinema_tickets"]},
        "tracking": {"tracking_uri": f"sqlite:///{db}", "experiment_name": "headline"}, **TINY_TRAINING}))
    env = {k: v for k, v in os.environ.items() if k != "ENVFACTORY_CACHE"}  # reuse the converted model / venvs
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(config), "--cores", "2", *extra], capture_output=True, text=True, timeout=1800, env=env)
    proc = run()
    logs = tmp_path / "results" / "headline" / "logs"
    tails = ("".join(f"\n== {p.name}\n" + p.read_text()[-1500:] for p in sorted(logs.glob("*.log")))
             if logs.is_dir() else "")
    assert proc.returncode == 0, proc.stderr[-3000:] + tails

    from evals.report import ModelResults

    res = ModelResults.model_validate_json((tmp_path / "results" / "smollm2-135m.json").read_text())
    page = (tmp_path / "results" / "headline" / "report.html").read_text()  # the page comes with the headline
    assert page.count("data:image/png;base64,") == 3 and "GRPO reward" in page
    assert set(res.benchmarks) == {"bfcl", "tau2", "mcp_atlas", "vitabench", "capability"}
    for name, b in res.benchmarks.items():
        assert b.status == "scored" or b.reason, name  # unavailable always says why
    assert res.benchmarks["bfcl"].status == "scored" and res.benchmarks["vitabench"].status == "scored"
    assert res.benchmarks["tau2"].status == "unavailable" and "user simulator" in res.benchmarks["tau2"].reason
    assert res.benchmarks["mcp_atlas"].status == "unavailable" and "judge" in res.benchmarks["mcp_atlas"].reason
    assert set(res.heldout) == {"base", "sft", "rl"} and res.final_stage == "rl"
    assert set(res.contamination) == {"bfcl", "tau2", "mcp_atlas", "vitabench", "capability"}
    cap = res.per_stage["capability"]  # lm-eval's smoke task on every stage, deltas against base
    assert list(cap.stages) == ["base", "sft", "rl"] and all(r.status == "scored" for r in cap.stages.values())
    assert [r.policy for r in cap.stages.values()] == ["smollm2-135m-base", "smollm2-135m-sft", "smollm2-135m-rl"]
    assert set(cap.deltas) == {"sft", "rl"} and all(d.delta is not None for d in cap.deltas.values())
    assert res.contamination["vitabench"]["checked"] is True
    assert res.training["rl"]["steps"] == 1 and res.training["sft"]["steps"] == 1
    assert res.training["rl"]["rollouts"] == "llama_cpp"  # the card's CPU engine generated GRPO's rollouts
    assert re.fullmatch(r"[0-9a-f]{40}", res.provenance.git_sha) and res.provenance.data_checksums

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name("headline").experiment_id])
    rules = {r.data.tags.get("envfactory.rule"): r for r in runs if r.data.tags.get("envfactory.kind") == "rule"}
    assert {"sft", "rl", "eval_envs_base", "eval_envs_sft", "eval_envs_rl", "eval_bfcl", "eval_capability",
            "eval_capability_base", "eval_capability_sft"} <= set(rules)
    assert "reward" in rules["rl"].data.metrics and "kl" in rules["rl"].data.metrics
    assert "reward_state" in rules["rl"].data.metrics and "loss" in rules["sft"].data.metrics

    again = run()
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
