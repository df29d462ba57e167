"""The tool dependency graph: an edge A -> B when a field of A's output can supply a required input of B.

Evidence per edge: the matched param and output field path, a score from name,
type and description similarity, and the reason. Nodes are `env.tool`; edges
between environments are marked `cross_env` (used only when multi-environment
sampling is enabled). Saved as networkx node-link JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
from pydantic import BaseModel

from ..env.spec import EnvSpec
from ..io import atomic_write_json
from .fields import ARRAY, Field, output_fields, tokens

MIN_SCORE = 0.5
_TYPE_COMPAT = {("integer", "number"), ("number", "integer")}


class ParamInfo(BaseModel):
    name: str
    type: str
    required: bool
    enum: list | None = None
    description: str = ""
    item_type: str | None = None


def params_of(tool_input_schema: dict) -> list[ParamInfo]:
    from .fields import _type_of, _unwrap

    required = set(tool_input_schema.get("required", []))
    out = []
    for name, sub in (tool_input_schema.get("properties") or {}).items():
        sub = _unwrap(sub)
        items = sub.get("items") if isinstance(sub.get("items"), dict) else None
        out.append(ParamInfo(name=name, type=_type_of(sub), required=name in required,
                             enum=sub.get("enum") or (items or {}).get("enum"),
                             description=sub.get("description", ""),
                             item_type=_type_of(items) if items else None))
    return out


def match_score(param: ParamInfo, field: Field, producer_tool: str) -> tuple[float, str]:
    """How plausibly `field` (an output of `producer_tool`) supplies `param`."""
    ptype = param.item_type if param.type == "array" else param.type
    if field.type != ptype and (field.type, ptype) not in _TYPE_COMPAT:
        return 0.0, "type mismatch"
    if field.type in ("object", "array", "boolean", "any"):
        return 0.0, "not a value"
    pname = param.name[:-1] if param.type == "array" and param.name.endswith("s") else param.name
    if field.name == pname:
        score, reason = 1.0, "same name"
    else:
        pt, ft = tokens(pname), tokens(field.name)
        if len(ft) >= 2 and pt[-len(ft):] == ft:  # from_bin_id <- bin_id, new_return_date <- return_date
            score, reason = 0.8, "name suffix"
        elif ft and pt and ft[-1] == pt[-1] == "id" and len(set(pt) & set(ft)) >= 2:
            score, reason = 0.6, "shared id tokens"
        else:
            return 0.0, "no name match"
    if producer_tool in param.description:
        score = min(1.0, score + 0.2)
        reason += " + description names the producer"
    return score, reason


def build_graph(specs: list[EnvSpec], cross_env: bool = True) -> nx.DiGraph:
    g = nx.DiGraph()
    fields: dict[str, list[Field]] = {}
    for spec in specs:
        for tool in spec.tools:
            node = f"{spec.name}.{tool.name}"
            g.add_node(node, env=spec.name, tool=tool.name, description=tool.description,
                       params=[p.model_dump() for p in params_of(tool.input_schema)],
                       input_schema=tool.input_schema, output_schema=tool.output_schema)
            fields[node] = list(output_fields(tool.output_schema))
    for b, bdata in g.nodes(data=True):
        for p in bdata["params"]:
            param = ParamInfo.model_validate(p)
            if param.enum:
                continue  # enumerated values come from the schema, not from other tools
            for a, adata in g.nodes(data=True):
                if a == b or (adata["env"] != bdata["env"] and not cross_env):
                    continue
                best = None
                for f in fields[a]:
                    score, reason = match_score(param, f, adata["tool"])
                    if score >= MIN_SCORE and (best is None or score > best[0] or
                                               (score == best[0] and ARRAY not in f.path)):
                        best = (score, reason, f)
                if best is None:
                    continue
                score, reason, f = best
                evidence = {"param": param.name, "field": f.name, "path": f.path, "score": score, "reason": reason,
                            "required": param.required}
                if g.has_edge(a, b):
                    g.edges[a, b]["bindings"].append(evidence)
                    g.edges[a, b]["score"] = max(g.edges[a, b]["score"], score)
                else:
                    g.add_edge(a, b, bindings=[evidence], score=score, cross_env=adata["env"] != bdata["env"])
    return g


def save_graph(g: nx.DiGraph, path: str | Path) -> None:
    atomic_write_json(path, nx.node_link_data(g, edges="edges"))


def load_graph(path: str | Path) -> nx.DiGraph:
    return nx.node_link_graph(json.loads(Path(path).read_text()), edges="edges")


def producers(g: nx.DiGraph, node: str, param: str, same_env_only: bool = True) -> list[tuple[str, dict]]:
    """(producer node, binding evidence) pairs that can supply `param` of `node`, best first."""
    out = []
    for a in g.predecessors(node):
        edge = g.edges[a, node]
        if same_env_only and edge["cross_env"]:
            continue
        for ev in edge["bindings"]:
            if ev["param"] == param:
                out.append((a, ev))
    return sorted(out, key=lambda x: (-x[1]["score"], x[0]))
