"""A non-editable install has everything the code reads at run time: model cards, catalog, templates, fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_finds_cards_and_catalog(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("envfactory-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    assert sorted(p.stem for p in (site / "envfactory" / "train" / "cards").glob("*.yaml")) == \
        ["qwen3-1.7b", "qwen3-4b", "qwen3-8b", "smollm2-135m"]
    # run from the unpacked wheel (the project folder not on the path): the installed copy is what is found
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = ("import envfactory, json; from envfactory.train.model_card import card_names, load_card; "
            "print(json.dumps([envfactory.__file__, card_names(), load_card('qwen3-8b').gpus]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    where, cards, gpus = json.loads(out.stdout)
    assert where.startswith(str(site)) and cards == ["qwen3-1.7b", "qwen3-4b", "qwen3-8b", "smollm2-135m"] and gpus == 8
    listed = subprocess.run([sys.executable, "-m", "envfactory", "envs", "list", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert len(json.loads(listed.stdout)) == 14
