"""Chain samplers over the tool graph.

*Topology-aware* (the paper's): pick a target tool, then resolve every required
input either from a value the user can state (present in the scenario data) or
from an earlier tool's output, recursively, within the paper's limits (`SamplerConfig`:
`max_depth` dependency levels, `max_envs` environments, `max_calls` steps per chain).
*Random walk* (the ablation baseline): follow random edges and fill arguments from
whatever values are around, without checking that inputs are resolvable.

Chains are plans: argument sources, not values. Execution (`querygen.execute`)
turns them into concrete gold calls. Deterministic under the seed.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, Field

from .build import ParamInfo, producers
from .fields import ARRAY, tokens

FREE_TEXT = {"query", "q", "search", "text", "keyword", "keywords", "name_contains", "title_contains"}
# Kinds of value a user states in their own words: a parameter ending in one of these may take any scenario
# value of a field ending in the same word (new_date <- date, start_time <- time, contact_email <- email).
VALUE_KINDS = {"date", "time", "email", "phone", "city", "name", "title", "genre", "category", "country"}
FILLER = ["priority", "follow up", "quarterly review", "urgent", "customer request", "draft notes"]


class ArgSource(BaseModel):
    kind: Literal["user", "step"]
    value: Any = None
    step: int | None = None
    path: list[str] = Field(default_factory=list)
    pick: int = 0


class PlannedStep(BaseModel):
    env: str
    tool: str
    args: dict[str, ArgSource]


class Chain(BaseModel):
    sampler: str
    target: str
    scenarios: dict[str, str]
    steps: list[PlannedStep]

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


class SamplerConfig(BaseModel):
    max_depth: int = 4
    max_envs: int = 1
    max_calls: int = 15  # steps (tool calls) one chain may plan
    p_chain: float = 0.75
    p_optional: float = 0.25


class ValueSource:
    """Values a user could state for a parameter, from one scenario's data."""

    def __init__(self, pools: dict[str, list]):
        self.pools = pools
        self._text = [v for k, vs in pools.items() if {"name", "title"} & set(tokens(k)) for v in vs
                      if isinstance(v, str)]

    def pool_for(self, param: ParamInfo) -> list | None:
        name = param.name
        if param.type == "array" and name.endswith("s"):
            name = name[:-1]
        if name in self.pools:
            return self.pools[name]
        pt = tokens(name)
        for k, vs in self.pools.items():  # check_in_date <- check_in, new_return_date <- return_date
            kt = tokens(k)
            if len(kt) >= 2 and pt[-len(kt):] == kt:
                return vs
        if name in FREE_TEXT and self._text:
            return sorted({w for v in self._text for w in v.split() if len(w) > 3})
        if pt and pt[-1] in VALUE_KINDS:
            merged = [v for k, vs in self.pools.items() if tokens(k)[-1:] == pt[-1:] for v in vs]
            if merged:
                return merged
        return None

    def value(self, param: ParamInfo, rng: random.Random) -> tuple[bool, Any]:
        if param.enum:
            choice = rng.choice(param.enum)
            return True, [choice] if param.type == "array" else choice
        if param.type == "boolean":
            return True, rng.random() < 0.5
        pool = self.pool_for(param)
        want = param.item_type if param.type == "array" else param.type
        if pool:
            typed = [v for v in pool if _fits(v, want)]
            if typed:
                if param.type == "array":
                    return True, rng.sample(typed, k=min(len(typed), rng.choice([1, 1, 2])))
                return True, rng.choice(typed)
        if not param.required:
            return False, None
        # Values a user simply decides (amounts, counts, free text): plausible defaults.
        if want == "integer":
            v = rng.choice([1, 1, 2, 3])
        elif want == "number":
            v = rng.choice([10.0, 20.0, 25.0, 50.0])
        elif want == "string" and not param.name.endswith("_id") and not param.name.endswith("_ids"):
            v = rng.choice(FILLER)
        else:
            return False, None
        return True, [v] if param.type == "array" else v


def _fits(value: Any, json_type: str | None) -> bool:
    return {"string": isinstance(value, str), "integer": isinstance(value, int),
            "number": isinstance(value, (int, float))}.get(json_type or "", False)


class TopologySampler:
    name = "topology"

    def __init__(self, graph: nx.DiGraph, values: dict[tuple[str, str], ValueSource], cfg: SamplerConfig, seed: int):
        self.g, self.values, self.cfg = graph, values, cfg
        self.rng = random.Random(seed)

    def sample(self, target: str, scenarios: dict[str, str]) -> Chain | None:
        """One chain ending in `target`, or None. The limits hold by construction: an environment joins the
        chain's set, and a step its budget, *before* a producer is recursed into, so a chain never spans more
        than `max_envs` environments, has more than `max_calls` steps, or a dependency path (target -> ... ->
        producer, reused steps included) longer than `max_depth`. A producer subtree that fails is undone
        whole (its steps, environments and scenario picks), and its input falls back to a user value or fails
        the attempt: never a truncated chain with unresolved inputs."""
        cfg = self.cfg
        steps: list[PlannedStep] = []
        produced: dict[str, int] = {}  # node -> step index, reused when several inputs need it
        height: dict[str, int] = {}  # node -> longest dependency path below its step
        envs = {self.g.nodes[target]["env"]}
        chosen = dict(scenarios)  # scenario picks of this attempt (the caller's fixed ones included)

        def resolve(node: str, depth: int, stack: tuple) -> int | None:
            # Invariants on entry: node's env is in `envs`; len(steps) + len(stack) + 1 <= max_calls (a step
            # is reserved for this node and for every ancestor still waiting on it); depth <= max_depth.
            data = self.g.nodes[node]
            env = data["env"]
            if env not in chosen:
                chosen[env] = self._scenario_for(env)
            values = self.values[(env, chosen[env])]
            args: dict[str, ArgSource] = {}
            deepest = 0
            params = [ParamInfo.model_validate(p) for p in data["params"]]
            # A tool with only optional inputs usually needs at least one of them (e.g. email or licence).
            forced = self.rng.choice(params).name if params and not any(p.required for p in params) else None
            for p in params:
                if not p.required and p.name != forced and self.rng.random() >= cfg.p_optional:
                    continue
                # A new producer needs a step of its own (budget) and a level below this one (depth); a reused
                # one adds its own height below this level; one from a new environment needs room in `envs`.
                room = len(steps) + len(stack) + 2 <= cfg.max_calls and depth < cfg.max_depth
                options = [(a, ev) for a, ev in producers(self.g, node, p.name, same_env_only=cfg.max_envs <= 1)
                           if a not in stack
                           and (depth + 1 + height[a] <= cfg.max_depth if a in produced else room)
                           and (self.g.nodes[a]["env"] in envs or len(envs) < cfg.max_envs)]
                user_ok, user_value = values.value(p, self.rng)
                reuse = next(((a, ev) for a, ev in options if a in produced), None)
                use_chain = options and depth < cfg.max_depth and (not user_ok or reuse or
                                                                    self.rng.random() < cfg.p_chain)
                if use_chain:
                    a, ev = reuse or self._pick(options)
                    idx = produced.get(a)
                    if idx is None:
                        n, envs_before, chosen_before = len(steps), set(envs), set(chosen)
                        envs.add(self.g.nodes[a]["env"])  # joins before the recursion, so it sees the limit
                        idx = resolve(a, depth + 1, (*stack, node))
                        if idx is None:  # undo the failed subtree whole (all three only grew meanwhile)
                            for k in [k for k, i in produced.items() if i >= n]:
                                del produced[k], height[k]
                            del steps[n:]
                            envs.intersection_update(envs_before)
                            for e in set(chosen) - chosen_before:
                                del chosen[e]
                    if idx is not None:
                        deepest = max(deepest, height[a] + 1)
                        args[p.name] = ArgSource(kind="step", step=idx, path=ev["path"],
                                                 pick=self.rng.choice([0, 0, 0, 1, 2]) if ARRAY in ev["path"] else 0)
                        continue
                if user_ok:
                    args[p.name] = ArgSource(kind="user", value=user_value)
                elif p.required:
                    return None  # unfillable on this path
            if len(steps) + len(stack) + 1 > cfg.max_calls:  # unreachable by the reservation above; kept as a guard
                return None
            steps.append(PlannedStep(env=env, tool=data["tool"], args=args))
            produced[node], height[node] = len(steps) - 1, deepest
            return len(steps) - 1

        if cfg.max_calls < 1 or resolve(target, 0, ()) is None:
            return None
        used = {s.env for s in steps}
        picks = {e: s for e, s in chosen.items() if e in used}  # only the environments the steps run in
        scenarios.update(picks)
        return Chain(sampler=self.name, target=target, scenarios=picks, steps=steps)

    def _pick(self, options):
        # Single-object producers (get/create) are more reliable than list producers (search results may be empty).
        weights = [ev["score"] * (0.5 if ARRAY in ev["path"] else 1.0) for _, ev in options]
        return self.rng.choices(options, weights=weights)[0]

    def _scenario_for(self, env: str) -> str:
        return self.rng.choice(sorted(s for e, s in self.values if e == env))


class RandomWalkSampler:
    """Baseline: a random walk along graph edges. Each call's arguments are filled on their own, from a scenario
    value of the same name or else any value of the right type; nothing ties a call to an earlier output.
    A walk stays in its start's environment (within any `max_envs`) and has at most `max_calls` steps."""
    name = "random_walk"

    def __init__(self, graph: nx.DiGraph, values: dict[tuple[str, str], ValueSource], cfg: SamplerConfig, seed: int):
        self.g, self.values, self.cfg = graph, values, cfg
        self.rng = random.Random(seed)

    def sample(self, start: str, scenarios: dict[str, str], length: int | None = None) -> Chain | None:
        env = self.g.nodes[start]["env"]
        scenarios.setdefault(env, self.rng.choice(sorted(s for e, s in self.values if e == env)))
        values = self.values[(env, scenarios[env])]
        length = min(length or self.rng.randint(1, self.cfg.max_depth + 1), self.cfg.max_calls)
        walk = [start]
        while len(walk) < length:
            nxt = [b for b in self.g.successors(walk[-1]) if not self.g.edges[walk[-1], b]["cross_env"]]
            if not nxt:
                break
            walk.append(self.rng.choice(nxt))
        steps: list[PlannedStep] = []
        all_values = [v for vs in values.pools.values() for v in vs]
        for node in walk:
            data = self.g.nodes[node]
            args = {}
            for p in map(ParamInfo.model_validate, data["params"]):
                if not p.required:
                    continue
                ok, value = values.value(p, self.rng)
                if not ok:
                    want = p.item_type if p.type == "array" else p.type
                    typed = [v for v in all_values if _fits(v, want)] or [""]
                    value = self.rng.choice(typed)
                    value = [value] if p.type == "array" else value
                args[p.name] = ArgSource(kind="user", value=value)
            steps.append(PlannedStep(env=env, tool=data["tool"], args=args))
        return Chain(sampler=self.name, target=walk[-1], scenarios=scenarios, steps=steps)
