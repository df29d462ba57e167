"""Stage `graph`: the tool graph of the admitted environments (`graph/graph.json` + `graph_report.json`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx

from ..env.manifest import admitted_packages
from ..io import atomic_write_json
from .build import ParamInfo, build_graph, producers, save_graph
from .fields import value_pools
from .sampler import ValueSource

if TYPE_CHECKING:  # the stage reads the config it is given; no run-time dependency on `envfactory.config`
    from ..config import ExperimentConfig


def unfillable_params(g: nx.DiGraph, values: dict[tuple[str, str], ValueSource]) -> list[dict]:
    """Required inputs that no scenario value and no tool output can supply."""
    out = []
    for node, data in g.nodes(data=True):
        for p in map(ParamInfo.model_validate, data["params"]):
            if not p.required or p.enum or p.type == "boolean":
                continue
            user = any(v.pool_for(p) for (env, _), v in values.items() if env == data["env"])
            if not user and not producers(g, node, p.name):
                out.append({"tool": node, "param": p.name, "type": p.type})
    return out


def run_graph_stage(cfg: ExperimentConfig, manifest_path: Path, out_path: Path) -> dict:
    packages = admitted_packages(manifest_path)
    g = build_graph([p.spec for p in packages.values()], cross_env=cfg.data.max_envs > 1)
    save_graph(g, out_path)
    values = {(n, s): ValueSource(value_pools(p.scenario(s))) for n, p in packages.items() for s in p.scenario_ids()}
    unfillable = unfillable_params(g, values)
    within = sum(1 for *_, d in g.edges(data=True) if not d["cross_env"])
    report = {"nodes": g.number_of_nodes(), "edges": g.number_of_edges(), "edges_within_env": within,
              "edges_cross_env": g.number_of_edges() - within, "unfillable_params": unfillable,
              "tools_without_inputs_from_tools": sum(1 for n in g if g.in_degree(n) == 0)}
    atomic_write_json(out_path.with_name("graph_report.json"), report)
    return report


def log_graph_run(run, report: dict, out_path: Path) -> None:
    """The `graph` stage's MLflow record (`run`: a `tracking.RuleRun`)."""
    run.metrics({"graph_nodes": report["nodes"], "graph_edges": report["edges"],
                 "unfillable_params": len(report["unfillable_params"])})
    run.artifact(out_path.with_name("graph_report.json"))
