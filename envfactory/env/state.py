"""Canonical state hashing and structured diffs (pure functions)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel


def canonical_json(state: Any) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def state_hash(state: Any) -> str:
    return hashlib.sha256(canonical_json(state).encode()).hexdigest()


class StateChange(BaseModel):
    op: str  # "added" | "removed" | "changed"
    path: list[str | int]
    before: Any = None
    after: Any = None


def state_diff(before: Any, after: Any, path: tuple = ()) -> list[StateChange]:
    """Changes that turn `before` into `after`, as leaf-level path edits.

    Dicts are compared key by key, lists element by element (a length change
    reports the extra/missing tail), anything else by equality.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[StateChange] = []
        for k in before:
            if k not in after:
                out.append(StateChange(op="removed", path=[*path, k], before=before[k]))
            else:
                out.extend(state_diff(before[k], after[k], (*path, k)))
        for k in after:
            if k not in before:
                out.append(StateChange(op="added", path=[*path, k], after=after[k]))
        return out
    if isinstance(before, list) and isinstance(after, list):
        out = []
        for i, (b, a) in enumerate(zip(before, after)):
            out.extend(state_diff(b, a, (*path, i)))
        for i in range(len(after), len(before)):
            out.append(StateChange(op="removed", path=[*path, i], before=before[i]))
        for i in range(len(before), len(after)):
            out.append(StateChange(op="added", path=[*path, i], after=after[i]))
        return out
    if before == after and type(before) is type(after):
        return []
    return [StateChange(op="changed", path=list(path), before=before, after=after)]
