"""The training view of a dataset row, shared by SFT, RL and held-out evaluation so all three see the same task.

Two budgets keep sequences short enough for small models and CPUs: the tools offered (the ones the gold
trajectory calls plus seeded distractors, up to `max_tools`, but never fewer than `MIN_DISTRACTORS`
distractors when the environment has them) and tool outputs cut to `max_tool_tokens`.
"""

from __future__ import annotations

import json
import random

from pydantic import BaseModel, ConfigDict, Field


class TrainView(BaseModel):
    """What SFT, RL and held-out evaluation all show the model."""
    model_config = ConfigDict(extra="forbid")
    max_tools: int | None = Field(3, ge=1, description="offer the gold tools plus distractors up to this many "
                                                       "tools in all; at least 2 distractors (MIN_DISTRACTORS) are "
                                                       "always added when the environment has them, even beyond "
                                                       "this cap, so max_tools only caps the distractors beyond "
                                                       "that minimum; null = every tool of the environment "
                                                       "(paper scale)")
    max_tool_tokens: int | None = Field(96, ge=8, description="tool outputs (and answers echoing them) cut to this "
                                                               "many tokens, keeping the head")
    max_tool_chars: int | None = Field(None, ge=16, description="tool outputs cut to this many characters, keeping "
                                                                "head and tail (the paper: 512, a middle cut)")

    def shorten(self, text: str, tokenizer=None) -> str:
        """A tool output as the model sees it: the character budget (middle cut), then the token budget."""
        return truncate_tokens(truncate_middle(text, self.max_tool_chars), tokenizer, self.max_tool_tokens)


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


def truncate_tokens(text: str, tokenizer, budget: int | None) -> str:
    """Cut `text` to `budget` tokens of `tokenizer`, saying how much was cut (the agent should know it is partial)."""
    if budget is None or tokenizer is None:
        return text
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= budget:
        return text
    return tokenizer.decode(ids[:budget]) + f" ...[truncated {len(ids) - budget} tokens]"


def truncate_middle(text: str, budget: int | None) -> str:
    """Keep the first and last `budget // 2` characters, saying how much was cut (the paper's tool-output cut)."""
    if budget is None or len(text) <= budget:
        return text
    half = budget // 2
    return f"{text[:half]} ...[truncated {len(text) - 2 * half} chars]... {text[len(text) - half:]}"


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
                                "function": {"name": c["function"]["name"], "arguments": _as_object(c["function"]["arguments"])}}
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
