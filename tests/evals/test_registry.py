"""One registry line (or one plugin entry) is all a benchmark needs: config schema, CLI and DAG follow it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evals.registry import BUILTIN, REGISTRY, contamination_loaders, get_benchmark

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = {"ENVFACTORY_BENCHMARKS": "dummy=tests.fixtures.dummy_benchmark:Dummy",
          "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **PLUGIN})


def test_builtin_benchmarks_are_registered_lazily():
    assert list(REGISTRY) == list(BUILTIN) == ["bfcl", "tau2", "mcp_atlas", "vitabench", "capability"]
    # importing the config (as every DAG build does) imports the registry, but no adapter
    code = "import sys, envfactory.config; print(sorted(m for m in sys.modules if m.startswith('evals.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert json.loads(out.replace("'", '"')) == ["evals.registry"]
    assert get_benchmark("vitabench").name == "vitabench"
    assert set(contamination_loaders()) == set(BUILTIN)
    with pytest.raises(ValueError, match="registered"):
        get_benchmark("nope")


def test_a_plugin_benchmark_reaches_schema_cli_and_dag(tmp_path):
    schema = json.loads(_run(sys.executable, "-m", "envfactory", "config", "schema").stdout)
    names = schema["$defs"]["EvaluationConfig"]["properties"]["benchmarks"]["items"]["enum"]
    assert names[-1] == "dummy" and names[:-1] == list(BUILTIN)
    assert "dummy" in _run(sys.executable, "-m", "envfactory", "eval", "--help").stdout

    config = tmp_path / "dummy.yaml"
    config.write_text(yaml.safe_dump({"experiment": "plug", "train": {"stages": []},
                                      "evaluation": {"benchmarks": ["dummy", "vitabench"]}}))
    dry = _run(sys.executable, "-m", "snakemake", "-n", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(ROOT / "config" / "config.yaml"), str(config), "--cores", "1")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-3000:]
    assert "results/plug/evals/dummy.json" in out and "results/plug/evals/vitabench.json" in out

    # without the plugin the same config is refused, naming the field
    plain = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(ROOT / "Snakefile"), "--directory",
                            str(tmp_path), "--configfile", str(ROOT / "config" / "config.yaml"), str(config),
                            "--cores", "1"], capture_output=True, text=True, timeout=300,
                           env={k: v for k, v in os.environ.items() if k != "ENVFACTORY_BENCHMARKS"})
    assert plain.returncode != 0 and "evaluation.benchmarks" in plain.stdout + plain.stderr
