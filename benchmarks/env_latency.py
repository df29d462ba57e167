"""Tool-call latency of an environment: in-process, through the sandbox worker, through MCP (stdio).

    python benchmarks/env_latency.py [--json] [--calls N] [--workers 1,2,4]
    envfactory bench env-latency --json

Uses `hotel_reservations` with an added few-hundred-row scenario (`bench_large`:
300 hotels, 200 guests, 150 reservations) so resets and calls see a realistic
state size. Prints one JSON object; all times in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envfactory.catalog import CATALOG_DIR  # noqa: E402
from envfactory.env.package import EnvPackage  # noqa: E402
from envfactory.env.runtime import EnvRuntime  # noqa: E402
from envfactory.env.sandbox import SandboxedEnv  # noqa: E402

SCENARIO = "bench_large"
READ = ("get_hotel", {"hotel_id": "HTL-002"})
WRITE_ARGS = {"guest_id": "G-0001", "hotel_id": "HTL-002", "room_type": "double", "check_in": "2026-05-10", "nights": 1}


def make_package(tmp: Path) -> EnvPackage:
    dest = tmp / "hotel_reservations"
    shutil.copytree(CATALOG_DIR / "hotel_reservations", dest, ignore=shutil.ignore_patterns("__pycache__"))
    base = json.loads((dest / "scenarios" / "spring_iberia.json").read_text())
    hotels, guests, reservations = {}, {}, {}
    src_hotels, src_guests = list(base["hotels"].values()), list(base["guests"].values())
    for i in range(300):
        h = dict(src_hotels[i % len(src_hotels)], hotel_id=f"HTL-{i + 1:03d}")
        hotels[h["hotel_id"]] = h
    for i in range(200):
        g = dict(src_guests[i % len(src_guests)], guest_id=f"G-{i + 1:04d}", email=f"guest{i + 1}@example.com")
        guests[g["guest_id"]] = g
    for i in range(150):
        rid = f"RSV-{i + 1:05d}"
        reservations[rid] = {"reservation_id": rid, "guest_id": f"G-{i % 200 + 1:04d}",
                             "hotel_id": f"HTL-{i % 300 + 1:03d}",
                             "room_type": "single", "check_in": "2026-06-01", "nights": 2, "total_price": 200.0,
                             "status": "confirmed", "refund": 0.0}
    scenario = {"today": base["today"], "hotels": hotels, "guests": guests, "reservations": reservations,
                "next_reservation_number": 151}
    (dest / "scenarios" / f"{SCENARIO}.json").write_text(json.dumps(scenario))
    return EnvPackage(dest)


def pct(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"p50_ms": round(s[len(s) // 2] * 1e3, 4), "p99_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1e3, 4),
            "mean_ms": round(statistics.fmean(s) * 1e3, 4), "n": len(s)}


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench_inprocess(package: EnvPackage, n: int) -> dict:
    rt = EnvRuntime.from_package(package)
    rt.reset(SCENARIO)
    read = timed(lambda: rt.call_json(*READ), n)

    write = timed(lambda: rt.call_json("create_reservation", WRITE_ARGS) and rt.reset(SCENARIO), n // 4)
    resets = []
    for _ in range(n // 4):
        rt.call_json("create_reservation", WRITE_ARGS)
        rt.call_json("cancel_reservation", {"reservation_id": "RSV-00151"})
        t = time.perf_counter()
        rt.reset(SCENARIO)
        resets.append(time.perf_counter() - t)
    load = timed(lambda: (rt.reset("spring_iberia"), rt.reset(SCENARIO)), 20)
    return {"call_read": pct(read), "call_write_plus_reset": pct(write), "reset_after_episode": pct(resets),
            "full_scenario_load_x2": pct(load)}


def bench_sandbox(package: EnvPackage, n: int) -> dict:
    with SandboxedEnv(package) as env:
        env.reset(SCENARIO)
        timed(lambda: env.call(*READ), 200)  # warm-up
        read = timed(lambda: env.call(*READ), n)
        invalid = timed(lambda: env.call("get_hotel", {"hotel_id": 7}), n // 4)
        resets, writes = [], []
        for _ in range(n // 4):
            t = time.perf_counter()
            env.call("create_reservation", WRITE_ARGS)
            writes.append(time.perf_counter() - t)
            env.call("cancel_reservation", {"reservation_id": "RSV-00151"})
            t = time.perf_counter()
            env.reset(SCENARIO)
            resets.append(time.perf_counter() - t)
        state_hash = timed(env.state_hash, 50)
        return {"call_read": pct(read), "call_write": pct(writes), "call_invalid_args": pct(invalid),
                "reset_after_episode": pct(resets), "state_hash": pct(state_hash), "layers": env.layers}


def bench_parallel(package: EnvPackage, workers: int, seconds: float) -> dict:
    envs = [SandboxedEnv(package) for _ in range(workers)]
    try:
        for e in envs:
            e.reset(SCENARIO)
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for e in envs:  # one call in flight per worker: they run concurrently
                e.submit(*READ)
            for e in envs:
                e.collect()
            steps += workers
        elapsed = time.perf_counter() - t0
        return {"workers": workers, "steps": steps, "steps_per_s": round(steps / elapsed, 1)}
    finally:
        for e in envs:
            e.close()


def bench_mcp(package: EnvPackage, n: int) -> dict:
    import anyio
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "envfactory", "envs", "serve", str(package.root),
                                                                 "--scenario", SCENARIO], cwd=str(ROOT))
    samples: list[float] = []

    async def main():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for i in range(n + 50):
                    t = time.perf_counter()
                    await session.call_tool(*READ)
                    if i >= 50:
                        samples.append(time.perf_counter() - t)

    anyio.run(main)
    return {"call_read": pct(samples)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--mcp-calls", type=int, default=300)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        package = make_package(Path(tmp))
        rows = json.loads((package.root / "scenarios" / f"{SCENARIO}.json").read_text())
        result = {
            "env": "hotel_reservations", "scenario": SCENARIO,
            "state_rows": sum(len(v) for v in rows.values() if isinstance(v, dict)),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "in_process": bench_inprocess(package, args.calls),
            "sandbox": bench_sandbox(package, args.calls),
            "parallel": [bench_parallel(package, int(w), args.seconds) for w in args.workers.split(",")],
            "mcp_stdio": bench_mcp(package, args.mcp_calls),
        }
    sb, ip = result["sandbox"], result["in_process"]
    result["summary"] = {
        "sandbox_call_p50_ms": sb["call_read"]["p50_ms"],
        "sandbox_overhead_vs_in_process_p50": round(sb["call_read"]["p50_ms"] / ip["call_read"]["p50_ms"], 2),
        "reset_p50_ms_in_process": ip["reset_after_episode"]["p50_ms"],
        "reset_p50_ms_sandbox": sb["reset_after_episode"]["p50_ms"],
        "max_steps_per_s": max(p["steps_per_s"] for p in result["parallel"]),
        "mcp_call_p50_ms": result["mcp_stdio"]["call_read"]["p50_ms"],
    }
    print(json.dumps(result, indent=None if args.json else 2))
    return result


if __name__ == "__main__":
    main()
