"""The paper's composite reward, as registered, switchable terms (each logged on its own).

    r = max(0, tau * trace + (1 - tau) * state - length_penalty - format_penalty)

trace           1 iff every gold call is matched by a distinct predicted call (name + arguments, numeric
                tolerance, masked arguments), in order by default or in any order (`trace_order: any`, the
                paper); `partial_trace` gives the matched fraction instead
state           fraction of involved environments whose final state hash equals the gold one. A state match is
                evidence only where the gold trajectory changed the state: for environments it left untouched
                the term falls back to trace, so doing nothing on a read-only task earns nothing
length_penalty  0.05 per call beyond the gold count, capped at 0.5
format_penalty  0.05 per unparseable call, capped at 0.5
tau             fixed (0.5) or linear from 0.9 to 0.1 over training
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Literal

from pydantic import BaseModel, Field

from ..agent.matching import matched_gold
from .settings import RewardConfig

Call = tuple[str, str, dict]


class RolloutOutcome(BaseModel):
    """What a finished episode is scored on."""
    gold_calls: list[tuple[str, str, dict[str, Any]]]
    predicted_calls: list[tuple[str, str, Any]] = Field(
        default_factory=list, description="every call the policy issued that parsed (successful or not)")
    format_errors: int = 0
    final_state_hash: dict[str, str]
    expected_state_hash: dict[str, str]
    initial_state_hash: dict[str, str]


def row_outcome(row: dict, predicted_calls: list, format_errors: int, final_state_hash: dict[str, str],
                initial_state_hash: dict[str, str]) -> RolloutOutcome:
    """The outcome of an episode on an RL row (its gold calls and expected final state hashes)."""
    return RolloutOutcome(gold_calls=[(g["env"], g["tool"], g["arguments"]) for g in json.loads(row["gold_calls"])],
                          predicted_calls=predicted_calls, format_errors=format_errors,
                          final_state_hash=final_state_hash,
                          expected_state_hash=json.loads(row["expected_state_hash"]),
                          initial_state_hash=initial_state_hash)


TermFn = Callable[[RolloutOutcome, RewardConfig], float]
WeightFn = Callable[[RewardConfig, float], float]


@dataclass(frozen=True)
class RewardTerm:
    """A registered term: `positive` terms are mixed by their weights, `penalty` terms are subtracted."""
    name: str
    kind: Literal["positive", "penalty"]
    fn: TermFn
    weight: WeightFn  # (config, training progress in [0, 1]) -> the term's weight before `weights[name]`


REWARD_TERMS: dict[str, RewardTerm] = {}


def register_term(name: str, kind: Literal["positive", "penalty"], weight: WeightFn = lambda cfg, progress: 1.0):
    """Adding a term = one decorated function here; config validation, logging, RL metrics and sweep tags
    all iterate this registry."""
    def deco(fn: TermFn) -> TermFn:
        REWARD_TERMS[name] = RewardTerm(name, kind, fn, weight)
        return fn

    return deco


def tau_at(cfg: RewardConfig, progress: float) -> float:
    if cfg.tau == "fixed":
        return cfg.tau_fixed
    p = min(1.0, max(0.0, progress))
    return cfg.tau_start + (cfg.tau_end - cfg.tau_start) * p


@register_term("trace", "positive", weight=tau_at)
def trace_term(o: RolloutOutcome, cfg: RewardConfig) -> float:
    if not o.gold_calls:
        return 1.0
    pred = [c for c in o.predicted_calls if isinstance(c[2], dict)]
    n = matched_gold([tuple(c) for c in o.gold_calls], [tuple(c) for c in pred], cfg.masked_args, cfg.tolerance,
                     ordered=cfg.trace_order == "ordered", extra_arguments=cfg.extra_arguments == "ignore")
    return n / len(o.gold_calls) if cfg.partial_trace else float(n == len(o.gold_calls))


@register_term("state", "positive", weight=lambda cfg, progress: 1.0 - tau_at(cfg, progress))
def state_term(o: RolloutOutcome, cfg: RewardConfig) -> float:
    envs = sorted(o.expected_state_hash)
    if not envs:
        return 0.0
    trace = None
    score = 0.0
    for env in envs:
        if o.expected_state_hash[env] == o.initial_state_hash.get(env):
            trace = trace_term(o, cfg) if trace is None else trace  # read-only here: no evidence in the state
            score += trace if o.final_state_hash.get(env) == o.expected_state_hash[env] else 0.0
        else:
            score += float(o.final_state_hash.get(env) == o.expected_state_hash[env])
    return score / len(envs)


@register_term("length_penalty", "penalty")
def length_penalty_term(o: RolloutOutcome, cfg: RewardConfig) -> float:
    extra = max(0, len(o.predicted_calls) - len(o.gold_calls))
    return min(cfg.penalty_cap, cfg.penalty_per_call * extra)


@register_term("format_penalty", "penalty")
def format_penalty_term(o: RolloutOutcome, cfg: RewardConfig) -> float:
    return min(cfg.penalty_cap, cfg.penalty_per_call * o.format_errors)


def composite_reward(o: RolloutOutcome, cfg: RewardConfig, progress: float = 0.0) -> dict[str, float]:
    """Every registered term and the total `max(0, weighted mean of positive terms - weighted penalties)`.

    With the default weights (trace: tau, state: 1 - tau, penalties: 1) this is the paper's
    `max(0, tau*trace + (1-tau)*state - len_pen - fmt_pen)`; a disabled term contributes 0 (reported as 0), and
    the positive weights are renormalised, so `trace` alone scores the trace, `state` alone the state."""
    terms, weights = {}, {}
    for name, term in REWARD_TERMS.items():
        on = name not in cfg.disabled
        terms[name] = term.fn(o, cfg) if on else 0.0
        weights[name] = term.weight(cfg, progress) * cfg.weights.get(name, 1.0) if on else 0.0
    positive = [n for n, t in REWARD_TERMS.items() if t.kind == "positive"]
    mass = sum(weights[n] for n in positive)
    gain = sum(weights[n] * terms[n] for n in positive) / mass if mass > 0 else 0.0
    loss = sum(weights[n] * terms[n] for n, t in REWARD_TERMS.items() if t.kind == "penalty")
    return {**terms, "tau": tau_at(cfg, progress), "reward": max(0.0, gain - loss)}
