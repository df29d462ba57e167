"""Pydantic contracts of the synthesis steps (what each LLM call must return, what is checkpointed)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..env.cases import Case
from ..env.spec import ToolSpec


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ScenarioProposal(_Out):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{2,40}$", description="snake_case environment name")
    domain: str
    description: str
    entities: list[str] = Field(min_length=1)
    operations: list[str] = Field(min_length=3)


class ProposalList(_Out):
    proposals: list[ScenarioProposal]


class SpecDraft(_Out):
    class_name: str = Field(pattern=r"^[A-Z][A-Za-z0-9]+$")
    description: str
    tools: list[ToolSpec] = Field(min_length=1)
    state_schema: dict[str, Any] = Field(default_factory=dict)


class Implementation(_Out):
    code: str = Field(description="the complete env.py module")
    scenarios: dict[str, dict[str, Any]] = Field(description="scenario id -> initial state")


class TestsDraft(_Out):
    cases: list[Case] = Field(min_length=1)


class Revision(_Out):
    code: str
    scenarios: dict[str, dict[str, Any]] | None = None
    cases: list[Case] | None = None


class RoundRecord(BaseModel):
    round: int
    problems: list[str]


class EnvCheckpoint(BaseModel):
    """Everything known about one environment's synthesis; rewritten after every step."""
    proposal: ScenarioProposal
    spec: SpecDraft | None = None
    implementation: Implementation | None = None
    tests: TestsDraft | None = None
    rounds: list[RoundRecord] = Field(default_factory=list)
    status: Literal["pending", "verified", "rejected"] = "pending"
    reasons: list[str] = Field(default_factory=list)
    tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0


class SynthesisReport(BaseModel):
    status: Literal["ran", "skipped"]
    reason: str = ""
    provider: str | None = None
    model: str | None = None
    proposed: int = 0
    verified: int = 0
    rejected: int = 0
    envs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    failure_reasons: dict[str, int] = Field(default_factory=dict)
    tokens: int = 0
    cached_calls: int = 0
    calls: int = 0
    cost_usd: float = 0.0
    tokens_per_verified_env: float | None = None
    cost_per_verified_env: float | None = None
    wall_seconds: float = 0.0
    cache_keys: list[str] = Field(default_factory=list)
