"""The whole default DAG, timed: wall time, exit code, peak memory of the process tree, and time per rule.

    envfactory bench whole-run [--json] [--target results/smollm2-135m.json] [--fresh results/default]
                               [--configfile config/experiments/rl_demo.yaml]

`--fresh DIR` deletes that experiment folder first, so every rule runs (the model conversion, the verification
and venv caches under ~/.cache/envfactory are kept: say so when you report). Per-rule times come from
Snakemake's own job metadata (.snakemake/metadata: start and end of each job's outputs), peak memory from
sampling the summed PSS of snakemake and all its children every second (RSS too, which counts shared pages
once per process).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sample_peak(proc: subprocess.Popen, stop: threading.Event, out: dict) -> None:
    """Peak of the summed PSS (shared pages split between the processes that map them, so the model files
    that several processes mmap count once) and, for reference, of the summed RSS; plus who held the PSS peak."""
    import psutil

    root = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        rss = pss = 0
        holders = []
        for p in procs:
            try:
                m = p.memory_full_info()
                rss += m.rss
                pss += m.pss
                holders.append((m.pss, " ".join(p.cmdline()[1:5])[:120]))
            except psutil.Error:
                pass
        out["peak_rss_mb"] = max(out.get("peak_rss_mb", 0), rss / 2**20)
        if pss / 2**20 > out.get("peak_pss_mb", 0):
            out["peak_pss_mb"] = pss / 2**20
            out["at_peak"] = [f"{b / 2**20:.0f} MB {c}" for b, c in sorted(holders, reverse=True)[:6]]
        stop.wait(1.0)


def rule_times(since: float) -> dict[str, dict]:
    """Per rule: jobs and seconds, from the metadata of outputs written since `since` (one job, many outputs:
    grouped by the job's hash, its span counted once)."""
    jobs: dict[tuple, tuple[str, float]] = {}
    for f in (ROOT / ".snakemake" / "metadata").glob("*"):
        try:
            meta = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        start, end = meta.get("starttime"), meta.get("endtime")
        if not start or not end or start < since:
            continue
        jobs[(meta.get("rule"), meta.get("job_hash"))] = (meta.get("rule"), end - start)
    per_rule: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "seconds": 0.0})
    for rule, seconds in jobs.values():
        per_rule[rule]["jobs"] += 1
        per_rule[rule]["seconds"] = round(per_rule[rule]["seconds"] + seconds, 1)
    return dict(sorted(per_rule.items(), key=lambda kv: -kv[1]["seconds"]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="results/smollm2-135m.json")
    ap.add_argument("--fresh", default=None, help="experiment folder to delete first (e.g. results/default)")
    ap.add_argument("--cores", default="all")
    ap.add_argument("--configfile", default=None, help="an experiment's config (e.g. config/experiments/rl_demo.yaml)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.fresh:
        shutil.rmtree(ROOT / args.fresh, ignore_errors=True)
        (ROOT / args.target).unlink(missing_ok=True)
    t0 = time.time()
    log = ROOT / ".snakemake" / f"whole_run_{int(t0)}.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "w") as fh:
        cmd = [sys.executable, "-m", "snakemake", "--cores", args.cores, args.target]
        if args.configfile:
            cmd += ["--configfile", args.configfile]
        proc = subprocess.Popen(cmd, cwd=ROOT,
                                stdout=fh, stderr=subprocess.STDOUT)
        stop, mem = threading.Event(), {}
        sampler = threading.Thread(target=sample_peak, args=(proc, stop, mem), daemon=True)
        sampler.start()
        rc = proc.wait()
        stop.set()
        sampler.join()
    wall = time.time() - t0
    out = {"target": args.target, "exit_code": rc, "wall_s": round(wall, 1), "wall_min": round(wall / 60, 1),
           "peak_pss_mb": round(mem.get("peak_pss_mb", 0)), "peak_rss_mb": round(mem.get("peak_rss_mb", 0)),
           "at_peak": mem.get("at_peak", []), "log": str(log.relative_to(ROOT)),
           "per_rule": rule_times(t0 - 1)}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.target}: exit {rc}, {out['wall_min']} min, peak PSS {out['peak_pss_mb']} MB (RSS summed "
              f"{out['peak_rss_mb']} MB; log {out['log']})")
        for rule, r in out["per_rule"].items():
            print(f"  {rule:24s} {r['jobs']:3d} job(s) {r['seconds']:8.1f} s")
    sys.exit(0 if rc == 0 else 1)


if __name__ == "__main__":
    main()
