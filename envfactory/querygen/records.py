"""Row models of the data stage's Parquet files. Nested, heterogeneous values are JSON strings
(documented per column) so every file has one fixed Arrow schema and loads with `datasets`."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field


class TrajectoryRecord(BaseModel):
    """One rollout (gold or teacher), as stored in `trajectories.parquet`."""
    traj_id: str
    chain_id: str
    source: Literal["gold", "teacher"]
    envs: list[str]
    scenarios: dict[str, str]                 # env -> scenario id
    split: Literal["train", "heldout"]
    ambiguity: int = 0
    messages: list[dict[str, Any]]            # OpenAI-style: system, user, assistant (tool_calls), tool ...
    tools: list[dict[str, Any]]               # OpenAI function tools offered to the agent
    final_state_hash: dict[str, str]          # env -> sha256 of the canonical final state
    state_diff: dict[str, list[dict]]         # env -> [{op, path, before, after}] vs the scenario
    matched: bool = True                      # final state (and calls) match the gold ones
    format_errors: int = 0

    def to_row(self) -> dict:
        row = self.model_dump(mode="json")
        for key in ("scenarios", "messages", "tools", "final_state_hash", "state_diff"):
            row[key] = json.dumps(row[key], ensure_ascii=False)
        return row

    @classmethod
    def from_row(cls, row: dict) -> "TrajectoryRecord":
        data = dict(row)
        for key in ("scenarios", "messages", "tools", "final_state_hash", "state_diff"):
            if isinstance(data.get(key), str):
                data[key] = json.loads(data[key])
        return cls.model_validate(data)


class QueryRecord(BaseModel):
    chain_id: str
    explicit: str                              # instruction-list query
    refined: str                               # calibrated refinement (implicit intent)
    ambiguity: int = Field(ge=0, le=2)
    refiner: str                               # "rule" or "llm:<model>"
    determined: bool                           # the refinement still states every required user value
    user_values: dict[str, Any] = Field(default_factory=dict)
