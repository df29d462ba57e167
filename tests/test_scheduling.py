"""On CPU a trainer is scheduled alone (it takes every core): SFT's ~5.6 GB peak plus an evaluation beside it
came near 8 GB on the default. Checked on Snakemake's own dry-run plan."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _threads(rule: str, cores: int) -> int:
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", str(cores), "--directory", str(ROOT),
                          "results/smollm2-135m.json", "--forcerun", rule],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-2000:]
    block = re.split(r"\n\[|\nrule |\nlocalrule ", out.stdout.split(f"rule {rule}:", 1)[1], maxsplit=1)[0]
    m = re.search(r"threads: (\d+)", block)
    return int(m.group(1)) if m else 1


def test_cpu_trainers_take_every_core_and_evaluations_one():
    assert _threads("sft", 3) == 3
    assert _threads("rl", 3) == 3
    assert _threads("eval_envs", 3) == 1
