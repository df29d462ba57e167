"""Stages `queries`, `rollouts` and `datasets` (graph: `graph/stage.py`, sample: `sampling.py`), each with the
function that records it in MLflow (`log_*_run`)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from .. import faults
from ..env.manifest import admitted_packages
from ..envgen.stage import llm_cache_dir
from ..io import atomic_write_json
from ..llm import LLMClient
from .datasets import rl_table, sft_table, split_of
from .query import make_query
from .records import QueryRecord, TrajectoryRecord
from .replay import ReplayGateError, gate_message, replay_metrics, replay_tables
from .rollouts import gold_trajectory, teacher_trajectory
from .sampling import read_chains, write_parquet

if TYPE_CHECKING:  # the stages read the config they are given; no run-time dependency on `envfactory.config`
    from ..config import ExperimentConfig


def _client(cfg: ExperimentConfig, provider) -> LLMClient | None:
    return LLMClient(provider, llm_cache_dir(cfg), cfg.envgen.cache_mode) if provider is not None else None


def read_queries(path: Path) -> dict[str, QueryRecord]:
    return {r["chain_id"]: QueryRecord(**{**r, "user_values": json.loads(r["user_values"])})
            for r in pq.read_table(path).to_pylist()}


def run_queries_stage(cfg: ExperimentConfig, manifest: Path, chains_path: Path, out: Path, log=print) -> dict:
    specs = {n: p.spec for n, p in admitted_packages(manifest).items()}
    chains = read_chains(chains_path)
    rng = random.Random(cfg.seed)
    client = _client(cfg, cfg.data.refiner)
    records = [make_query(c, specs, rng.choice([0, 1, 2]), rng, client, cfg.data.refine) for c in chains]
    rows = [{**r.model_dump(mode="json"), "user_values": json.dumps(r.user_values, ensure_ascii=False)}
            for r in records]
    write_parquet(pa.Table.from_pylist(rows, schema=pa.schema([
        ("chain_id", pa.string()), ("explicit", pa.string()), ("refined", pa.string()), ("ambiguity", pa.int32()),
        ("refiner", pa.string()), ("determined", pa.bool_()), ("user_values", pa.string())])), out)
    rejected = sum(not r.determined for r in records)
    report = {"queries": len(records), "refiner": records[0].refiner if records else None,
              "rejected_refinements": rejected, "refinement_rejection_rate": rejected / max(1, len(records)),
              "ambiguity_histogram": dict(Counter(str(r.ambiguity) for r in records))}
    if client is not None:
        report["llm_tokens"] = client.totals.tokens
    atomic_write_json(out.with_name("queries_report.json"), report)
    log(f"[queries] {len(records)} queries ({report['refiner']}), {rejected} refinements rejected")
    return report


def read_trajectories(path: Path) -> list[TrajectoryRecord]:
    return [TrajectoryRecord.from_row(r) for r in pq.read_table(path).to_pylist()]


def run_rollouts_stage(cfg: ExperimentConfig, manifest: Path, chains_path: Path, queries_path: Path, out: Path,
                       log=print) -> dict:
    packages = admitted_packages(manifest)
    specs = {n: p.spec for n, p in packages.items()}
    queries = read_queries(queries_path)
    heldout = cfg.data.heldout_among({n: s.domain for n, s in specs.items()})  # by name and by domain
    chains = [c for c in read_chains(chains_path) if c.chain_id in queries and queries[c.chain_id].determined]
    records = [gold_trajectory(c, queries[c.chain_id], specs, split_of(c.envs, heldout)) for c in chains]
    stats = Counter(gold=len(records))
    teacher = _client(cfg, cfg.data.teacher)
    if teacher is not None:
        from ..env.sandbox import SandboxedEnv

        user_sim = _client(cfg, cfg.data.user_simulator) if cfg.data.conversational else None
        sessions = {}
        try:
            for c in chains:
                for env in c.envs:
                    if env not in sessions:
                        sessions[env] = SandboxedEnv(packages[env], cfg.envs.sandbox)
                rec, ok = teacher_trajectory(c, queries[c.chain_id], specs, sessions, teacher,
                                             split_of(c.envs, heldout), cfg.data.max_turns, user_sim)
                stats["teacher_attempts"] += 1
                stats["teacher_kept"] += ok
                if ok:
                    records.append(rec)
        finally:
            for s in sessions.values():
                s.close()
    table = pa.Table.from_pylist([r.to_row() for r in records])
    write_parquet(table, out)
    report = {**stats, "teacher_pass_rate": stats["teacher_kept"] / stats["teacher_attempts"]
              if stats.get("teacher_attempts") else None, "trajectories": len(records)}
    atomic_write_json(out.with_name("rollouts_report.json"), report)
    log(f"[rollouts] {len(records)} trajectories ({dict(stats)})")
    return report


def run_datasets_stage(cfg: ExperimentConfig, manifest: Path, chains_path: Path, queries_path: Path,
                       trajectories_path: Path, out_dir: Path, log=print) -> dict:
    """Build the SFT / RL tables, replay every row (`replay.py`), and write them only when the replay rate
    reaches `data.min_replay_rate` (else raise `ReplayGateError`, so a rerun rebuilds them)."""
    packages = admitted_packages(manifest)  # synthesized and imported environments included
    specs = {n: p.spec for n, p in packages.items()}
    heldout = cfg.data.heldout_among({n: s.domain for n, s in specs.items()})  # by name and by domain
    sft = sft_table(read_trajectories(trajectories_path))
    rl = rl_table(read_chains(chains_path), read_queries(queries_path), specs, heldout)
    replay = replay_tables(sft, rl, packages, cfg.envs.sandbox)
    replay["min_replay_rate"] = cfg.data.min_replay_rate
    replay["passed"] = replay["replay_rate"] >= cfg.data.min_replay_rate
    atomic_write_json(out_dir / "replay_report.json", replay)
    log(f"[datasets] replay: {replay['replay_rate']:.4f} (sft {replay['replay_rate_sft']:.4f}, "
        f"rl {replay['replay_rate_rl']:.4f}), {len(replay['replay_failures'])} failing rows, "
        f"{replay['replay_wall_s']} s")
    if not replay["passed"]:
        for name in ("sft.parquet", "rl.parquet", "datasets_report.json"):  # no stale table that looks gated
            (out_dir / name).unlink(missing_ok=True)
        raise ReplayGateError(gate_message(replay, cfg.data.min_replay_rate), replay)
    write_parquet(sft, out_dir / "sft.parquet")
    faults.point("datasets:sft_written")  # crash tests: one of the two outputs written
    write_parquet(rl, out_dir / "rl.parquet")
    report = {"sft_rows": sft.num_rows, "rl_rows": rl.num_rows,
              "sft_splits": dict(Counter(sft.column("split").to_pylist())),
              "rl_splits": dict(Counter(rl.column("split").to_pylist())), "heldout_envs": sorted(heldout),
              "heldout_domains": cfg.data.heldout_domains,
              **{k: replay[k] for k in ("replay_rate", "replay_rate_sft", "replay_rate_rl", "replay_failures",
                                        "replay_wall_s")}}
    atomic_write_json(out_dir / "datasets_report.json", report)
    log(f"[datasets] sft {report['sft_splits']}, rl {report['rl_splits']}")
    return report


def log_queries_run(run, cfg: ExperimentConfig, report: dict, out: Path) -> None:
    """The `queries` stage's MLflow record (`run`: a `tracking.RuleRun`)."""
    run.params({"refiner": report["refiner"], "refine": cfg.data.refine})
    run.metrics({"queries": report["queries"], "refinement_rejection_rate": report["refinement_rejection_rate"],
                 **{f"ambiguity_{k}": v for k, v in report["ambiguity_histogram"].items()}})
    run.artifact(out.with_name("queries_report.json"))


def log_rollouts_run(run, report: dict, out: Path) -> None:
    """The `rollouts` stage's MLflow record: every numeric entry of its report."""
    run.metrics({k: v for k, v in report.items() if isinstance(v, (int, float)) and v is not None})
    run.artifact(out.with_name("rollouts_report.json"))


def log_datasets_run(run, report: dict | None, out_dir: Path, replay: dict | None = None) -> None:
    """The `datasets` stage's MLflow record. When the replay gate failed (`report` None, `replay` the
    `ReplayGateError`'s report) no dataset was written, but the replay rates and failures still reach MLflow."""
    if report is None:
        run.metrics(replay_metrics(replay))
    else:
        run.metrics({"sft_rows": report["sft_rows"], "rl_rows": report["rl_rows"], **replay_metrics(report),
                     **{f"sft_{k}": v for k, v in report["sft_splits"].items()},
                     **{f"rl_{k}": v for k, v in report["rl_splits"].items()}})
    run.artifact(out_dir / "replay_report.json")
    if report is not None:
        run.artifact(out_dir / "datasets_report.json")
