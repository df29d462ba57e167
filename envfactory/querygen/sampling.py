"""Stage `sample`: gold-verified chains over the tool graph (the graph itself is `graph/stage.py`)."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx
import pyarrow as pa
import pyarrow.parquet as pq

from ..env.manifest import admitted_packages
from ..env.package import EnvPackage
from ..graph.build import load_graph
from ..graph.fields import value_pools
from ..graph.sampler import Chain, RandomWalkSampler, SamplerConfig, TopologySampler, ValueSource
from ..io import atomic_path, atomic_write_json
from .execute import ChainExecutor, ExecutedChain

if TYPE_CHECKING:  # the stage reads the config it is given; no run-time dependency on `envfactory.config`
    from ..config import ExperimentConfig

CHAIN_COLUMNS = ["chain_id", "sampler", "target", "envs", "scenarios", "length", "calls", "final_state_hash",
                 "state_diff"]


def _chains_table(chains: list[ExecutedChain]) -> pa.Table:
    rows = [{"chain_id": c.chain_id, "sampler": c.sampler, "target": c.target, "envs": c.envs,
             "scenarios": json.dumps(c.scenarios), "length": c.length,
             "calls": json.dumps([x.model_dump(mode="json") for x in c.calls], ensure_ascii=False),
             "final_state_hash": json.dumps(c.final_state_hash),
             "state_diff": json.dumps(c.state_diff, ensure_ascii=False)} for c in chains]
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("chain_id", pa.string()), ("sampler", pa.string()), ("target", pa.string()), ("envs", pa.list_(pa.string())),
        ("scenarios", pa.string()), ("length", pa.int32()), ("calls", pa.string()),
        ("final_state_hash", pa.string()), ("state_diff", pa.string())]))


def write_parquet(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:  # fsynced, renamed; on an error (a full disk) no partial or temp file stays
        pq.write_table(table, tmp)


def read_chains(path: Path) -> list[ExecutedChain]:
    out = []
    for row in pq.read_table(path).to_pylist():
        out.append(ExecutedChain(chain_id=row["chain_id"], sampler=row["sampler"], target=row["target"],
                                 scenarios=json.loads(row["scenarios"]), calls=json.loads(row["calls"]),
                                 final_state_hash=json.loads(row["final_state_hash"]),
                                 state_diff=json.loads(row["state_diff"])))
    return out


def sample_chains(cfg: ExperimentConfig, g: nx.DiGraph, packages: dict[str, EnvPackage], sampler_name: str,
                  seed: int, log=print) -> tuple[list[ExecutedChain], dict]:
    """Coverage-driven sampling: every tool is a target until it has `chains_per_tool` verified chains
    or `attempts_per_tool` attempts. Returns unique verified chains and attempt statistics."""
    d = cfg.data
    values = {(n, s): ValueSource(value_pools(p.scenario(s))) for n, p in packages.items() for s in p.scenario_ids()}
    scfg = SamplerConfig(max_depth=d.max_depth, max_envs=d.max_envs, max_calls=d.max_calls, p_chain=d.p_chain,
                         p_optional=d.p_optional)
    cls = TopologySampler if sampler_name == "topology" else RandomWalkSampler
    sampler = cls(g, values, scfg, seed)
    executor = ChainExecutor(packages, cfg.envs.sandbox)
    unique: dict[str, ExecutedChain] = {}
    stats = Counter()
    try:
        for target in sorted(g.nodes):
            got = 0
            for _ in range(d.attempts_per_tool):
                stats["attempts"] += 1
                chain: Chain | None = sampler.sample(target, {})
                if chain is None:
                    stats["unfillable"] += 1
                    continue
                stats["planned"] += 1
                result = executor.run(chain)
                if isinstance(result, ExecutedChain):
                    stats["executed_ok"] += 1
                    if result.chain_id not in unique:
                        unique[result.chain_id] = result
                        got += 1
                    if got >= d.chains_per_tool:
                        break
                else:
                    stats[f"failed_{result.kind}"] += 1
    finally:
        executor.close()
    stats["unique"] = len(unique)
    return list(unique.values()), dict(stats)


def compare_samplers(cfg: ExperimentConfig, g: nx.DiGraph, packages: dict[str, EnvPackage], n: int) -> dict:
    """Execution success of topology-aware chains vs length-matched random walks, same targets/starts.

    Each topology attempt picks a uniform random target; the random walk starts at a uniform random tool
    and walks as many steps as the topology chain planned, so both see the same length distribution.
    """
    d = cfg.data
    values = {(e, s): ValueSource(value_pools(p.scenario(s))) for e, p in packages.items() for s in p.scenario_ids()}
    scfg = SamplerConfig(max_depth=d.max_depth, max_envs=d.max_envs, max_calls=d.max_calls, p_chain=d.p_chain,
                         p_optional=d.p_optional)
    topo = TopologySampler(g, values, scfg, cfg.seed + 1)
    walk = RandomWalkSampler(g, values, scfg, cfg.seed + 2)
    rng = random.Random(cfg.seed + 3)
    nodes = sorted(g.nodes)
    executor = ChainExecutor(packages, cfg.envs.sandbox)
    outcome = {"topology": Counter(), "random_walk": Counter()}
    try:
        for _ in range(n):
            chain = topo.sample(rng.choice(nodes), {})
            length = len(chain.steps) if chain else rng.randint(1, d.max_depth + 2)
            rw = walk.sample(rng.choice(nodes), {}, length=length)
            for name, c in (("topology", chain), ("random_walk", rw)):
                ok = c is not None and isinstance(executor.run(c), ExecutedChain)
                multi = c is not None and len(c.steps) >= 2
                outcome[name]["attempts"] += 1
                outcome[name]["ok"] += ok
                outcome[name]["multi_attempts"] += multi
                outcome[name]["multi_ok"] += ok and multi
                if c is not None and len(c.steps) >= 2:  # coherence: later calls consume earlier outputs
                    outcome[name]["bound_steps"] += sum(any(a.kind == "step" for a in st.args.values())
                                                        for st in c.steps)
                    outcome[name]["steps_after_first"] += len(c.steps) - 1
    finally:
        executor.close()
    return {name: {"attempts": o["attempts"], "success_rate": round(o["ok"] / max(1, o["attempts"]), 4),
                   "multi_step_attempts": o["multi_attempts"],
                   "multi_step_success_rate": round(o["multi_ok"] / max(1, o["multi_attempts"]), 4),
                   "dependency_rate": round(o["bound_steps"] / max(1, o["steps_after_first"]), 4)}
            for name, o in outcome.items()}


def run_sample_stage(cfg: ExperimentConfig, manifest_path: Path, graph_path: Path, out_path: Path,
                     log=print) -> dict:
    t0 = time.perf_counter()
    packages = admitted_packages(manifest_path)
    g = load_graph(graph_path)
    chains, stats = sample_chains(cfg, g, packages, cfg.data.sampler, cfg.seed, log)
    write_parquet(_chains_table(sorted(chains, key=lambda c: c.chain_id)), out_path)
    tools = {f"{c.env}.{c.tool}" for ch in chains for c in ch.calls}
    lengths = Counter(c.length for c in chains)
    report = {"sampler": cfg.data.sampler, "chains": len(chains), "stats": stats,
              "success_rate": stats.get("executed_ok", 0) / max(1, stats["attempts"]),
              "tool_coverage": len(tools) / max(1, g.number_of_nodes()), "tools_covered": len(tools),
              "tools_total": g.number_of_nodes(), "length_histogram": {str(k): lengths[k] for k in sorted(lengths)},
              "uncovered_tools": sorted(set(g.nodes) - tools)}
    if cfg.data.compare_random_walk:
        report["comparison"] = compare_samplers(cfg, g, packages, n=cfg.data.compare_attempts)
    report["seconds"] = round(time.perf_counter() - t0, 2)
    atomic_write_json(out_path.with_name("sample_report.json"), report)
    log(f"[sample] {len(chains)} unique verified chains, coverage {report['tool_coverage']:.1%}, "
        f"lengths {report['length_histogram']}, success {report['success_rate']:.1%}")
    return report


def log_sample_run(run, cfg: ExperimentConfig, report: dict, out_path: Path) -> None:
    """The `sample` stage's MLflow record (`run`: a `tracking.RuleRun`)."""
    run.params({"sampler": cfg.data.sampler, "max_depth": cfg.data.max_depth, "max_envs": cfg.data.max_envs})
    run.metrics({"chains": report["chains"], "tool_coverage": report["tool_coverage"],
                 "sample_success_rate": report["success_rate"],
                 **{f"chain_len_{k}": v for k, v in report["length_histogram"].items()},
                 **{f"{name}_{key}": val for name, r in report.get("comparison", {}).items()
                    for key, val in r.items()}})
    run.artifact(out_path.with_name("sample_report.json"))
