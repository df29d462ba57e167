"""`envfactory bench NAME`: run a benchmark script from the repository's benchmarks/ folder."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

PERF_BENCHMARKS = {"env-latency": "env_latency.py", "sft-overhead": "sft_overhead.py",
                   "dag-overhead": "dag_overhead.py", "generation": "generation.py", "whole-run": "whole_run.py"}


def run_benchmark(name: str, as_json: bool, extra: list[str]) -> int:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / PERF_BENCHMARKS[name]
    if not script.is_file():
        raise SystemExit(f"error: {script} not found; benchmarks run from a source checkout (pip install -e .)")
    argv = [str(script), *(["--json"] if as_json else []), *extra]
    old, sys.argv = sys.argv, argv
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = old
    return 0
