from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from envfactory.config import ExperimentConfig, json_schema, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_committed_schema_is_generated_from_the_model():
    committed = json.loads((ROOT / "config" / "schema.json").read_text())
    assert committed == json_schema(), "regenerate: envfactory config schema --out config/schema.json"


def test_default_config_validates():
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert cfg.experiment == "default" and cfg.envs.catalog == "all"
    assert len(cfg.config_hash()) == 16


def test_typos_and_bad_values_are_rejected():
    with pytest.raises(ValidationError):
        ExperimentConfig.model_validate({"envz": {}})
    with pytest.raises(ValidationError):
        ExperimentConfig.model_validate({"envs": {"sandbox": {"call_timeout_s": -1}}})
    with pytest.raises(ValidationError):
        ExperimentConfig.model_validate({"experiment": "has space"})


def test_snakemake_rejects_an_invalid_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"envs": {"catalog": "all", "sandbox": {"memory_mb": "lots"}}}))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad), "--cores", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "memory_mb" in proc.stdout + proc.stderr


def test_importing_the_config_is_light():
    """Every DAG build imports the config: settings live in light modules, nothing heavy comes with them."""
    code = ("import sys, envfactory.config; "
            "print(sorted(m for m in sys.modules if m.startswith(('envfactory', 'evals'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    loaded = eval(out)  # noqa: S307 - a list literal printed by our own subprocess
    assert len(loaded) <= 10, loaded
    assert not [m for m in loaded if m.endswith(("sandbox", ".rl", ".sft", "client", "model_card"))], loaded
