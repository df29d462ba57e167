"""One benchmark on one model, from the experiment config (the body of rule `eval_bench`)."""

from __future__ import annotations

import time
from pathlib import Path

from envfactory.config import ExperimentConfig
from envfactory.io import atomic_write_text
from envfactory.llm.registry import ProviderConfig

from .base import BenchmarkResult, EvalContext, PolicySpec, get_benchmark


def policy_for(cfg: ExperimentConfig, model_dir: str, name: str) -> PolicySpec:
    ev = cfg.evaluation
    provider = ev.policy_endpoint or ProviderConfig(name="local", model=model_dir,
                                                    options={"max_new_tokens": ev.max_new_tokens})
    return PolicySpec(kind="model", name=name, provider=provider, max_tokens=ev.max_new_tokens,
                      temperature=ev.trial_temperature)


def context_for(cfg: ExperimentConfig, bench: str, policy: PolicySpec, work_dir: Path) -> EvalContext:
    ev = cfg.evaluation
    return EvalContext(policy=policy, judge=ev.judge, user_simulator=ev.user_simulator, limit=ev.limit,
                       categories=ev.categories.get(bench, []), num_trials=ev.num_trials, max_turns=ev.max_turns,
                       seed=cfg.seed, work_dir=work_dir.resolve(),
                       cache_dir=Path(ev.cache_dir) if ev.cache_dir else None, strict=ev.strict)


def run_benchmark(bench: str, ctx: EvalContext, out: Path) -> BenchmarkResult:
    t0 = time.time()
    result = get_benchmark(bench).run(ctx)
    if not result.wall_s:
        result.wall_s = round(time.time() - t0, 1)
    atomic_write_text(out, result.model_dump_json(indent=2))
    return result
