"""Matching predicted tool calls against gold calls (rollout filters now, RL rewards later)."""

from __future__ import annotations

from typing import Any, Iterable


def values_match(gold: Any, pred: Any, tol: float = 1e-6) -> bool:
    if isinstance(gold, bool) or isinstance(pred, bool):
        return gold is pred
    if isinstance(gold, (int, float)) and isinstance(pred, (int, float)):
        return abs(float(gold) - float(pred)) <= tol * max(1.0, abs(float(gold)))
    if isinstance(gold, str) and isinstance(pred, str):
        return gold.strip().casefold() == pred.strip().casefold()
    if isinstance(gold, list) and isinstance(pred, list):
        return len(gold) == len(pred) and all(values_match(g, p, tol) for g, p in zip(gold, pred))
    if isinstance(gold, dict) and isinstance(pred, dict):
        return gold.keys() == pred.keys() and all(values_match(gold[k], pred[k], tol) for k in gold)
    return gold == pred


def call_matches(gold: tuple[str, str, dict], pred: tuple[str, str, dict], masked: Iterable[str] = (),
                 tol: float = 1e-6, extra_arguments: bool = False) -> bool:
    """Same (env, tool) and equal values for every unmasked argument; `extra_arguments` lets the prediction
    carry arguments the gold call does not (the paper's reward ignores them)."""
    genv, gtool, gargs = gold
    penv, ptool, pargs = pred
    if (genv, gtool) != (penv, ptool) or not isinstance(pargs, dict):
        return False
    masked = set(masked)
    keys = (set(gargs) if extra_arguments else set(gargs) | set(pargs)) - masked
    return all(k in gargs and k in pargs and values_match(gargs[k], pargs[k], tol) for k in keys)


def matched_gold(gold: list[tuple[str, str, dict]], pred: list[tuple[str, str, dict]],
                 masked: Iterable[str] = (), tol: float = 1e-6, ordered: bool = True,
                 extra_arguments: bool = False) -> int:
    """How many gold calls are matched by distinct predicted calls: in order (greedy subsequence), or in any
    order (each gold call takes the first unused matching prediction, as the paper's reward does)."""
    if not ordered:
        used: set[int] = set()
        for g in gold:
            hit = next((i for i, p in enumerate(pred)
                        if i not in used and call_matches(g, p, masked, tol, extra_arguments)), None)
            if hit is not None:
                used.add(hit)
        return len(used)
    j = 0
    n = 0
    for g in gold:
        while j < len(pred) and not call_matches(g, pred[j], masked, tol, extra_arguments):
            j += 1
        if j == len(pred):
            break
        n += 1
        j += 1
    return n
