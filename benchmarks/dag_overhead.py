"""DAG overhead: wall time of a no-op re-run of the default target (goal <= 5 s) and of paper-scale dry runs
(the single experiment results/qwen3-8b.json and the environment-count sweep, 12 points).

    python benchmarks/dag_overhead.py [--target results/smollm2-135m.json] [--repeat 3] [--json]

The no-op re-run is only measured when the default target is complete (otherwise it would run the pipeline);
the script says so instead of timing a real run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="results/smollm2-135m.json")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    snake = [sys.executable, "-m", "snakemake"]
    out: dict = {}

    secs, proc = timed(snake + ["-n", "-q", "--cores", "1", args.target])
    if proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr:
        runs = [timed(snake + ["--cores", "all", args.target])[0] for _ in range(args.repeat)]
        out["noop_rerun_s_median"] = round(statistics.median(runs), 2)
        out["noop_rerun_s"] = [round(r, 2) for r in runs]
    else:
        out["noop_rerun_s_median"] = None
        out["noop_rerun_note"] = f"{args.target} is not complete; run `snakemake --cores all {args.target}` first"

    profile = ["--profile", "profiles/slurm"] if _has_slurm_plugin() else []
    out["paper_scale_dry_run_s_median"], _ = dry_runs(
        snake + ["-n", *profile, "results/qwen3-8b.json"],
        args.repeat)
    out["paper_sweep_dry_run_s_median"], out["paper_sweep_jobs"] = dry_runs(
        snake + ["-n", *profile, "results/paper_env_scaling/report.html"], args.repeat)
    out["paper_scale_dry_run_profile"] = "slurm" if profile else "local"
    print(json.dumps(out) if args.json else "\n".join(f"{k:32s} {v}" for k, v in out.items()))


def dry_runs(cmd: list[str], repeat: int) -> tuple[float, int | None]:
    """Median wall time of `repeat` dry runs, and the job count Snakemake planned."""
    runs = []
    for _ in range(repeat):
        secs, proc = timed(cmd)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
        runs.append(secs)
    jobs = [ln.split()[-1] for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("total")]
    return round(statistics.median(runs), 2), int(jobs[0]) if jobs else None


def _has_slurm_plugin() -> bool:
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
