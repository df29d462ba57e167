"""The training view of a dataset row, shared by SFT, RL and held-out evaluation so all three see the same task.

Two budgets keep sequences short enough for small models and CPUs: the tools offered (the ones the gold
trajectory calls plus seeded distractors, up to `max_tools`, but never fewer than `MIN_DISTRACTORS`
distractors when the environment has them) and tool outputs cut to `max_tool_tokens`.
"""

from __future__ import annotations

import json
import random

from .settings import TrainView, truncate_middle, truncate_tokens  # noqa: F401 - re-exported


def called_tools(messages: list[dict]) -> set[str]:
    return {c["function"]["name"] for m in messages for c in (m.get("tool_calls") or [])}


MIN_DISTRACTORS = 2
"""Tools offered beyond the gold ones, whenever the environment has that many: without them a view of exactly
the gold tools tells the model what to call (max_tools caps only the distractors beyond this minimum)."""


def select_tools(tools: list[dict], must_have: set[str], max_tools: int | None, rng: random.Random,
                 min_distractors: int = MIN_DISTRACTORS) -> list[dict]:
    """`must_have` plus random distractors up to `max_tools` in all, but at least `min_distractors` of them when
    the environment has them (even beyond `max_tools`), in the environment's own order."""
    if max_tools is None:
        return tools
    keep = [t for t in tools if t["function"]["name"] in must_have]
    others = [t for t in tools if t["function"]["name"] not in must_have]
    k = min(len(others), max(min_distractors, max_tools - len(keep)))
    if k == len(others):
        return tools
    keep += rng.sample(others, k=k)
    order = {t["function"]["name"]: i for i, t in enumerate(tools)}
    return sorted(keep, key=lambda t: order[t["function"]["name"]])


def clean_messages(messages: list[dict], tokenizer=None, view: TrainView | None = None) -> list[dict]:
    """Template-ready messages: arguments as objects, tool outputs (and answers echoing them) within budget."""
    out = []
    for m in messages:
        content = m.get("content") or ""
        if view is not None and m["role"] == "tool":
            content = view.shorten(content, tokenizer)
        elif view is not None and m["role"] == "assistant" and not m.get("tool_calls"):
            content = truncate_tokens(content, tokenizer, view.max_tool_tokens)  # answers may echo outputs
        d = {"role": m["role"], "content": content}
        if m.get("tool_calls"):
            d["tool_calls"] = [{"type": "function",
                                "function": {"name": c["function"]["name"],
                                             "arguments": _as_object(c["function"]["arguments"])}}
                               for c in m["tool_calls"]]
        out.append(d)
    return out


def _as_object(arguments):
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
    return arguments


def row_rng(seed: int, key: str) -> random.Random:
    """A per-row generator: the same row gets the same distractors in every stage and every run."""
    return random.Random(f"{seed}:{key}")
