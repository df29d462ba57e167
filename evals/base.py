"""The evaluation contract: one result schema, one registry of benchmarks, one description of the policy.

An adapter turns (policy, benchmark subset) into a `BenchmarkResult`. In-process adapters (VitaBench, MCP-Atlas)
drive the shared agent loop with a `Policy` callable; isolated adapters (BFCL-v3, tau2) run in their own
virtualenv and reach the model through an OpenAI-compatible endpoint. `oracle` and `idle` are policies every
adapter implements for its own gold data: oracle must reach the benchmark's maximum, idle must score 0 on the
deterministic metrics.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from envfactory.llm.registry import ProviderConfig
from envfactory.stats import SMOKE_N, mean_stderr  # noqa: F401 - re-exported for the adapters

RESULT_SCHEMA_VERSION = 1


class PolicySpec(BaseModel):
    """The model under test. `model` = a provider (local transformers, or any OpenAI-compatible endpoint)."""
    model_config = ConfigDict(extra="forbid")
    kind: Literal["model", "oracle", "idle"] = "model"
    name: str = Field(description="label in results, e.g. smollm2-135m-sft")
    provider: ProviderConfig | None = Field(None, description="required for kind=model")
    temperature: float = Field(0.7, ge=0, description="sampling temperature of every trial "
                                                      "(evaluation.trial_temperature)")
    max_tokens: int = 512
    base_model: str | None = Field(None, description="hub id the model was trained from (model card hub_id, e.g. "
                                                     "Qwen/Qwen3-8B): lets a benchmark use its own handler for that "
                                                     "model family")
    chat_template: str | None = Field(None, description="template an in-process model formats tools with (model "
                                                        "card chat_template), named in the labels it is scored under")


class EvalContext(BaseModel):
    """Everything an adapter needs; built by `envfactory eval` from config."""
    model_config = ConfigDict(extra="forbid")
    policy: PolicySpec
    judge: ProviderConfig | None = Field(None, description="LLM judge endpoint (MCP-Atlas claims, VitaBench rubric)")
    user_simulator: ProviderConfig | None = Field(None, description="user simulator endpoint (tau2, VitaBench)")
    limit: int | None = Field(None, description="tasks per category (subset size); None = all")
    categories: list[str] = Field(default_factory=list, description="empty = the adapter's defaults")
    options: dict[str, Any] = Field(default_factory=dict, description="adapter-specific settings, validated by the "
                                                                      "adapter (evaluation.options.<bench>)")
    num_trials: int = Field(1, ge=1, description="trials per task, for pass^k")
    max_turns: int = 12
    seed: int = 0
    work_dir: Path
    data_dir: Path | None = Field(None, description="benchmark data override (fixtures, or a downloaded full set)")
    cache_dir: Path | None = Field(None, description="LLM response cache for judge / user simulator")
    strict: bool = Field(False, description="fail the run on malformed benchmark data rows instead of skipping "
                                            "and reporting them (evaluation.strict)")


class CategoryScore(BaseModel):
    category: str
    score: float = Field(description="mean of per-task scores in [0, 1] (the benchmark's headline metric)")
    n: int
    stderr: float | None = Field(description="standard error of the mean; null when n < 2 (undefined, not 0)")
    pass_k: dict[str, float] = Field(default_factory=dict, description="k -> pass^k, when num_trials > 1")
    metrics: dict[str, float] = Field(default_factory=dict, description="secondary metrics reported beside score")
    label: str = Field("", description="qualifier, e.g. 'replay-based' when offline tools were replayed")

    def labels(self) -> list[str]:
        """Every qualifier of this number: the adapter's, and smoke-sized n."""
        out = [part.strip() for part in self.label.split(";") if part.strip()]
        return out + ([f"smoke-sized n={self.n}"] if self.n < SMOKE_N else [])


class Aggregate(BaseModel):
    """A benchmark's own summary over several categories, by its own formula (beside our task-weighted `score`).
    `score` is null, with the reason, when a category the formula needs was not run."""
    score: float | None
    n: int = Field(0, description="tasks behind it")
    categories: list[str] = Field(default_factory=list, description="the categories it combines")
    missing: list[str] = Field(default_factory=list, description="categories the formula needs that were not run")
    formula: str = ""
    label: str = Field("", description="qualifier, e.g. partial when it combines fewer categories than the benchmark")
    reason: str = Field("", description="why null")


class BenchmarkResult(BaseModel):
    schema_version: int = RESULT_SCHEMA_VERSION
    benchmark: str
    status: Literal["scored", "unavailable"]
    reason: str = Field("", description="why unavailable (or caveats when scored)")
    policy: str
    categories: list[CategoryScore] = Field(default_factory=list)
    adapter_version: str
    data_version: str = ""
    data_checksum: str = ""
    judge_model: str | None = None
    user_sim_model: str | None = None
    handler: str = Field("", description="how the benchmark's harness reached the policy (BFCL: its model handler)")
    aggregates: dict[str, Aggregate] = Field(default_factory=dict, description="the benchmark's own summary numbers "
                                                                               "(BFCL: overall, multi_turn, ...)")
    wall_s: float = 0.0

    @model_validator(mode="after")
    def _aggregate_names(self):
        clash = set(self.aggregates) & {c.category for c in self.categories}
        if clash:  # both become `<bench>.<key>` flat metrics
            raise ValueError(f"aggregate names {sorted(clash)} are also category names")
        return self

    @property
    def score(self) -> float | None:
        """Task-weighted mean over categories (ours; a benchmark's own formula is in `aggregates`)."""
        n = sum(c.n for c in self.categories)
        return sum(c.score * c.n for c in self.categories) / n if n else None


class Benchmark(Protocol):
    name: str
    version: str  # adapter version, bumped when scoring changes

    def run(self, ctx: EvalContext) -> BenchmarkResult: ...


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark `name` (evals/registry.py: one line per benchmark, imported lazily)."""
    from .registry import get_benchmark as get

    return get(name)


def pass_hat_k(successes_per_task: list[tuple[int, int]], k: int) -> float:
    """tau-bench's pass^k: mean over tasks of C(c, k) / C(n, k) (n trials, c successes)."""
    vals = [math.comb(c, k) / math.comb(n, k) for n, c in successes_per_task if n >= k]
    return sum(vals) / len(vals) if vals else 0.0


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pick_categories(requested: list[str], default: list[str], known: list[str], bench: str) -> list[str]:
    """The requested categories (default when none), refusing unknown ones loudly."""
    chosen = list(requested) or list(default)
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise ValueError(f"{bench}: unknown categories {unknown}; known: {list(known)}")
    return chosen


def dir_checksum(path: Path) -> str:
    """sha256 over relative paths and bytes of every file under `path` (or of one file)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path.parent if path.is_file() else path)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def unavailable(benchmark: str, version: str, policy: str, reason: str) -> BenchmarkResult:
    return BenchmarkResult(benchmark=benchmark, status="unavailable", reason=reason, policy=policy,
                           adapter_version=version)


def idle_policy():
    """Says nothing and calls nothing: the floor every deterministic metric must score 0."""
    from envfactory.llm import Message

    def act(messages, tools):
        return Message(role="assistant", content="")

    return act


def episode_workers(policy: PolicySpec) -> int:
    """Episodes a benchmark may run at once for this policy: the provider's concurrency for a model (an engine or
    an endpoint serves requests side by side); 1 for oracle/idle policies and scripted replies, whose answers are
    consumed in order."""
    if policy.kind != "model" or policy.provider is None or policy.provider.name == "scripted":
        return 1
    return max(1, policy.provider.concurrency)


def trial_seed(seed: int, task_id: str, trial: int) -> int:
    """Per (task, trial): trials of one task sample differently, and a re-run samples the same."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{task_id}:{trial}".encode()).digest()[:4], "big")


def model_policy(spec: PolicySpec, seed: int | None = None):
    """A `Policy` (agent-loop callable) for kind=model, through the provider layer. Never cached: a cached policy
    would replay trial 1 as trials 2..k (pass^k = pass^1) and could serve a model's predecessor's answers."""
    from envfactory.agent.loop import llm_policy
    from envfactory.llm import LLMClient

    if spec.kind != "model" or spec.provider is None:
        raise ValueError("model_policy needs kind=model and a provider")
    client = LLMClient(spec.provider, cache_mode="off")
    return llm_policy(client, temperature=spec.temperature, max_tokens=spec.max_tokens, seed=seed)
