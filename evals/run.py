"""One benchmark on one model, from the experiment config (the body of rule `eval_bench`)."""

from __future__ import annotations

import time
from pathlib import Path

from envfactory.config import ExperimentConfig
from envfactory.generation.serving import local_provider
from envfactory.io import atomic_write_text
from envfactory.llm.types import ProviderConfig

from .base import BenchmarkResult, EvalContext, PolicySpec, get_benchmark


def policy_for(cfg: ExperimentConfig, model_dir: str, name: str, provider: ProviderConfig | None = None) -> PolicySpec:
    """`provider`: a served one (`generation.serving.served_policy`, engine vllm); else the endpoint or in-process."""
    from envfactory.train.model_card import load_card

    ev = cfg.evaluation
    provider = provider or ev.policy_endpoint or local_provider(cfg.generation, model_dir, ev.max_new_tokens)
    card = load_card(cfg.train.model)
    return PolicySpec(kind="model", name=name, provider=provider, max_tokens=ev.max_new_tokens,
                      temperature=ev.trial_temperature, base_model=card.hub_id, chat_template=card.chat_template)


def context_for(cfg: ExperimentConfig, bench: str, policy: PolicySpec, work_dir: Path) -> EvalContext:
    ev = cfg.evaluation
    return EvalContext(policy=policy, judge=ev.judge, user_simulator=ev.user_simulator, limit=ev.limit,
                       categories=ev.categories.get(bench, []), options=ev.options.get(bench, {}),
                       num_trials=ev.num_trials, max_turns=ev.max_turns,
                       seed=cfg.seed, work_dir=work_dir.resolve(),
                       cache_dir=Path(ev.cache_dir) if ev.cache_dir else None, strict=ev.strict)


def run_benchmark(bench: str, ctx: EvalContext, out: Path) -> BenchmarkResult:
    t0 = time.time()
    result = get_benchmark(bench).run(ctx)
    if not result.wall_s:
        result.wall_s = round(time.time() - t0, 1)
    atomic_write_text(out, result.model_dump_json(indent=2))
    return result


def log_eval_run(run, bench: str, policy: PolicySpec, ctx: EvalContext, result: BenchmarkResult, out: Path) -> None:
    """Rule `eval_bench`'s MLflow record (`run`: a `tracking.RuleRun`): the score and one metric per category."""
    run.params({"benchmark": bench, "policy": policy.name, "limit": ctx.limit,
                "adapter_version": result.adapter_version, "status": result.status})
    run.metrics({f"{bench}_{c.category}": c.score for c in result.categories})
    if result.score is not None:
        run.metrics({f"{bench}_score": result.score})
    run.artifact(out)
