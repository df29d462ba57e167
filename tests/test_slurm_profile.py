"""The SLURM profile dry-runs the paper-scale target and sizes each job from the model card and the profile."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _job_blocks(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if m:
            blocks.setdefault(m.group(1), []).append(block)
    return blocks


def _resources(block: str) -> dict[str, str]:
    line = next(l for l in block.splitlines() if l.strip().startswith("resources:"))
    return dict(kv.strip().split("=", 1) for kv in line.split(":", 1)[1].split(","))


@pytest.mark.slow
def test_paper_scale_dry_run_on_slurm(tmp_path):
    """The headline command as written: no --configfile; the card names the paper experiment."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--profile", "profiles/slurm",
                           "results/qwen3-8b.json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    jobs = _job_blocks(out)
    for rule in ("envgen", "sample", "rollouts", "sft", "rl", "eval_envs", "eval_bench", "report"):
        assert rule in jobs, rule
    sft = _resources(jobs["sft"][0])
    assert sft["gpu"] == "8" and sft["slurm_partition"] == "gpu" and int(sft["mem_mb"]) >= 400000
    assert "accelerate.commands.launch --num_processes 8 -m envfactory train sft" in jobs["sft"][0]
    assert _resources(jobs["rl"][0])["gpu"] == "8"
    assert len(jobs["eval_bench"]) == 5 and all(_resources(b)["gpu"] == "1" for b in jobs["eval_bench"])
    # capability (lm-eval) also on the base and SFT models, for the deltas against base
    assert len(jobs["eval_bench_stage"]) == 2 and all(_resources(b)["gpu"] == "1" and
                                                      _resources(b)["slurm_partition"] == "gpu"
                                                      for b in jobs["eval_bench_stage"])
    assert _resources(jobs["report"][0])["slurm_partition"] == "cpu"
    assert "results/paper_qwen3_8b/config.json" in out  # the paper experiment, not the CPU default


@pytest.mark.parametrize("model", ["qwen3-1.7b", "qwen3-4b"])
def test_every_card_headline_resolves_to_its_paper_experiment(model):
    """`snakemake -n results/<card>.json` with the default config: each card's paper experiment, sized by its card."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", f"results/{model}.json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    jobs = _job_blocks(out)
    name = "paper_" + model.replace("-", "_")
    assert f"results/{name}/train/sft/metrics.json" in jobs["sft"][0]
    assert _resources(jobs["sft"][0])["gpu"] == str({"qwen3-1.7b": 2, "qwen3-4b": 4}[model])
