"""BFCL-v3 (Berkeley Function-Calling Leaderboard) through the `bfcl-eval` package, in its own virtualenv.

The runner (`evals/runners/bfcl_runner.py`) executes inside the venv built from `evals/requirements/bfcl.txt`
and calls the package's own generation loop and checkers in-process; this side only decides how the runner
reaches the policy and turns its per-entry outcomes into a `BenchmarkResult`.

- kind=model: an OpenAI-compatible endpoint. `provider.name == "openai"` is used as is (its `base_url`, or
  the OpenAI API when unset; the key is read from `api_key_env` inside the runner). Any other provider
  (local transformers, scripted) is served in this process by `envfactory.agent.openai_server.serve`.
  Which BFCL handler talks to it (`BenchmarkResult.handler`):
  - a Qwen model (`PolicySpec.base_model` = Qwen/...) on an endpoint stated to be vLLM or SGLang
    (`provider.engine`): BFCL's own Qwen FC handler, its registered name `<hub id>-FC` (QwenFCHandler: BFCL's
    Qwen chat template over /v1/completions, BFCL's `<tool_call>` parsing), against that server through BFCL's
    skip-server-setup mechanism — the official way BFCL scores Qwen models;
  - otherwise an OpenAI chat-completions FC handler (BFCL's OpenAICompletionsHandler), the tools formatted by
    whatever serves the model; every category is labelled with that (for the in-process model: the project's
    template, `handler: openai-fc via envfactory qwen3_tools template (non-official)`).
- kind=oracle: the runner answers with the gold calls; scores 1.0 on every supported category.
- kind=idle: the runner answers with empty text; scores 0 on every default category (relevance/irrelevance
  categories reward abstention, which is why they are not defaults).

Score per category = accuracy under the package's checker (AST match for single-turn, state + response
execution match per turn for multi-turn); `limit` takes the first N entries per category in id order.
`BenchmarkResult.score` is our task-weighted mean over the categories run; BFCL's own summary numbers (overall,
non-live, live, multi-turn) are in `aggregates` (`bfcl_aggregates`).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from urllib.parse import urlsplit

from evals.base import (
    Aggregate,
    BenchmarkResult,
    CategoryScore,
    EvalContext,
    PolicySpec,
    mean_stderr,
    pick_categories,
    unavailable,
)
from evals.isolated import IsolatedEnvError, ensure_venv, run_runner

PACKAGE_PIN = "bfcl-eval==2025.7.17"
DATA_VERSION = f"{PACKAGE_PIN} BFCL_v3"

MULTI_TURN = ["multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context"]
SINGLE_TURN = ["simple", "multiple", "parallel", "parallel_multiple"]
DEFAULT_CATEGORIES = MULTI_TURN + SINGLE_TURN
# Also accepted when asked for explicitly. Not java/javascript: the package's Java checker raises on this data
# (KeyError 'Boolean' in JAVA_TYPE_CONVERSION), and their answers need language-specific string encoding.
EXTRA_CATEGORIES = ["live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
                    "irrelevance", "live_irrelevance", "live_relevance"]
BFCL_STEP_LIMIT = 20  # bfcl-eval's own cap on model steps per user turn (MAXIMUM_STEP_LIMIT)
ABSTENTION_CATEGORIES = {"irrelevance", "live_irrelevance"}  # correct = no call: idle scores 1 here


def _label(category: str, max_turns: int) -> str:
    """Qualifiers a reader needs: abstention categories, and multi-turn runs capped below BFCL's step limit."""
    if category in ABSTENTION_CATEGORIES:
        return "abstention (no call is correct)"
    if category in MULTI_TURN and max_turns < BFCL_STEP_LIMIT:
        return f"steps per turn capped at {max_turns} (BFCL: {BFCL_STEP_LIMIT})"
    return ""


# ----------------------------------------------------------------------------------------- which handler

QWEN_FC_ENGINES = ("vllm", "sglang")  # the servers BFCL's local-model handlers are written against


def qwen_fc_model(spec: PolicySpec) -> str | None:
    """BFCL's registered name for its Qwen FC handler of this policy, or None when that handler does not apply.

    bfcl-eval 2025.7.17 registers `Qwen/Qwen3-<size>-FC` -> `QwenFCHandler`
    (bfcl_eval/constants/model_config.py, local_inference_model_map); the runner refuses a name it lacks."""
    prov = spec.provider
    if spec.kind != "model" or prov is None or prov.name != "openai" or prov.engine not in QWEN_FC_ENGINES:
        return None
    if not (spec.base_model or "").startswith("Qwen/"):
        return None
    return f"{spec.base_model}-FC"


def skip_server_env(base_url: str | None) -> dict[str, str]:
    """The environment of BFCL's skip-server-setup mode: `OSSHandler.__init__`
    (bfcl_eval/model_handler/local_inference/base_oss_handler.py) reads VLLM_ENDPOINT (host) and VLLM_PORT and
    talks to http://{VLLM_ENDPOINT}:{VLLM_PORT}/v1, so the endpoint must have exactly that form."""
    u = urlsplit(base_url or "")
    if u.scheme != "http" or not u.hostname or u.path.rstrip("/") != "/v1" or u.query or u.username:
        raise ValueError(f"bfcl: BFCL's Qwen FC handler reaches its server as http://<host>:<port>/v1; "
                         f"policy_endpoint.base_url {base_url!r} is not of that form")
    return {"VLLM_ENDPOINT": u.hostname, "VLLM_PORT": str(u.port or 80)}


def handler_label(spec: PolicySpec) -> str:
    """The qualifier of every number scored through a handler other than BFCL's own for the model ("" if none)."""
    prov = spec.provider
    if spec.kind != "model" or prov is None or qwen_fc_model(spec):
        return ""
    if prov.name != "openai":
        via = f"envfactory {spec.chat_template} template" if spec.chat_template else "envfactory openai_server"
        return f"handler: openai-fc via {via} (non-official)"
    if prov.engine:
        return f"handler: openai-fc via {prov.engine} chat template (non-official)"
    return "handler: openai-fc on an OpenAI-compatible endpoint"


def _qwen_fc_policy(spec: PolicySpec, bfcl_model: str) -> tuple[dict, dict[str, str]]:
    """(request policy fields, runner environment) for BFCL's Qwen FC handler against `spec.provider`.

    The handler sends `model=<local_model_path or the hub id>` (`OSSHandler.batch_inference`), so the endpoint
    must serve the model under that name: an absolute local directory (`vllm serve /abs/dir`, also where the
    tokenizer is read from) or the hub id itself."""
    prov = spec.provider
    local = Path(prov.model)
    if local.is_absolute() and local.is_dir():
        local_model_path = str(local)
    elif prov.model == spec.base_model:
        local_model_path = None
    else:
        raise ValueError(f"bfcl: BFCL's Qwen FC handler requests model=<local model dir or {spec.base_model}>; "
                         f"policy_endpoint.model {prov.model!r} is neither an absolute local directory nor "
                         f"{spec.base_model!r} (serve the model under one of those names)")
    pol = {"handler": "bfcl-qwen-fc", "bfcl_model": bfcl_model, "engine": prov.engine, "base_url": prov.base_url,
           "local_model_path": local_model_path, "skip_server_setup": True}
    return pol, skip_server_env(prov.base_url)


# ----------------------------------------------------------------------------------------- BFCL's summaries

# BFCL-v3's own summary numbers, implemented here from the formula of bfcl-eval 2025.7.17's
# `bfcl_eval/eval_checker/eval_runner_helper.py` (`generate_leaderboard_csv` with `calculate_unweighted_accuracy`
# / `calculate_weighted_accuracy`; the columns of its data_overall.csv, data_non_live.csv, data_live.csv,
# data_multi_turn.csv):
#   non_live   = unweighted mean of [mean(simple, java, javascript), multiple, parallel, parallel_multiple,
#                irrelevance]
#   live       = mean of the six live categories weighted by their entry counts
#   multi_turn = unweighted mean of the four multi-turn categories
#   overall    = unweighted mean of [non_live, live, multi_turn]
# BFCL counts a category that was not run as 0; here a summary needing one is null with the missing list,
# except multi_turn, reported over the multi-turn categories run and labelled partial when fewer than four.
# Live weights are the categories' full sizes (what a full run's counts are), so a `limit` subset estimates the
# same number.
NON_LIVE_SIMPLE = ["simple", "java", "javascript"]
NON_LIVE_REST = ["multiple", "parallel", "parallel_multiple", "irrelevance"]
LIVE = ["live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance",
        "live_relevance"]
UNSUPPORTED = {"java", "javascript"}  # see EXTRA_CATEGORIES


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def bfcl_aggregates(acc: dict[str, float], n: dict[str, int], size: dict[str, int]) -> dict[str, Aggregate]:
    """BFCL's overall / non_live / live / multi_turn from per-category accuracy (`acc`), tasks scored (`n`) and
    full category sizes (`size`, the live weights) of the categories run."""
    def make(name: str, needed: list[str], formula: str, compute) -> Aggregate:
        missing = [c for c in needed if c not in acc]
        if missing:
            why = f"BFCL's {name} needs {missing}, not run"
            if UNSUPPORTED & set(missing):
                why += f" ({', '.join(sorted(UNSUPPORTED & set(missing)))} not supported by this adapter)"
            return Aggregate(score=None, categories=[c for c in needed if c in acc], missing=missing,
                             formula=formula, reason=why)
        return Aggregate(score=compute(), n=sum(n[c] for c in needed), categories=list(needed), formula=formula,
                         label=f"BFCL {name} formula")

    non_live_f = "mean(mean(simple, java, javascript), multiple, parallel, parallel_multiple, irrelevance)"
    non_live = make("non_live", NON_LIVE_SIMPLE + NON_LIVE_REST, non_live_f,
                    lambda: _mean([_mean([acc[c] for c in NON_LIVE_SIMPLE])] + [acc[c] for c in NON_LIVE_REST]))
    live = make("live", LIVE, "mean of the live categories weighted by category size",
                lambda: sum(acc[c] * size[c] for c in LIVE) / sum(size[c] for c in LIVE))
    multi_run = [c for c in MULTI_TURN if c in acc]
    if multi_run:
        partial = len(multi_run) < len(MULTI_TURN)
        multi = Aggregate(score=_mean([acc[c] for c in multi_run]), n=sum(n[c] for c in multi_run),
                          categories=multi_run, missing=[c for c in MULTI_TURN if c not in acc],
                          formula="unweighted mean of the multi-turn categories",
                          label="BFCL multi_turn formula" + (f"; partial: {len(multi_run)}/{len(MULTI_TURN)} "
                                                             f"multi-turn categories" if partial else ""))
    else:
        multi = Aggregate(score=None, missing=list(MULTI_TURN), formula="unweighted mean of the multi-turn "
                          "categories", reason="no multi-turn category was run")
    parts = {"non_live": non_live, "live": live, "multi_turn": multi}
    overall_f = "mean(non_live, live, multi_turn)"
    if any(p.score is None or p.missing for p in parts.values()):
        missing = [c for p in parts.values() for c in p.missing]
        why = f"BFCL's overall needs every non-live, live and multi-turn category; missing {missing}"
        if UNSUPPORTED & set(missing):
            why += f" ({', '.join(sorted(UNSUPPORTED & set(missing)))} not supported by this adapter)"
        overall = Aggregate(score=None, categories=[c for p in parts.values() for c in p.categories],
                            missing=missing, formula=overall_f, reason=why)
    else:
        overall = Aggregate(score=_mean([p.score for p in parts.values()]), n=sum(p.n for p in parts.values()),
                            categories=[c for p in parts.values() for c in p.categories], formula=overall_f,
                            label="BFCL overall formula")
    return {"overall": overall, **parts}


class BFCL:
    version = "2"  # 2: BFCL's Qwen FC handler on vLLM/SGLang endpoints; handler labels; BFCL's own aggregates

    def run(self, ctx: EvalContext) -> BenchmarkResult:
        t0 = time.time()
        spec = ctx.policy
        categories = pick_categories(ctx.categories, DEFAULT_CATEGORIES, DEFAULT_CATEGORIES + EXTRA_CATEGORIES, "bfcl")
        if spec.kind == "model" and spec.provider is None:
            raise ValueError("bfcl: kind=model needs a provider")
        try:
            ensure_venv("bfcl")
        except (IsolatedEnvError, OSError) as e:
            return unavailable(self.name, self.version, spec.name, f"bfcl venv could not be built: {e}")

        handler, env = "", {}
        work = ctx.work_dir / "bfcl"
        request = {"categories": categories, "limit": ctx.limit, "project_root": str(work / "project"),
                   "data_dir": str(ctx.data_dir) if ctx.data_dir else None, "num_threads": 1,
                   "max_steps_per_turn": min(ctx.max_turns, BFCL_STEP_LIMIT),
                   "policy": {"kind": spec.kind, "temperature": spec.temperature, "max_tokens": spec.max_tokens}}
        with contextlib.ExitStack() as stack:
            if spec.kind == "model":
                prov = spec.provider
                pol = request["policy"]
                pol.update(timeout_s=prov.timeout_s, max_retries=prov.max_retries)
                bfcl_model = qwen_fc_model(spec)
                if bfcl_model:  # BFCL's own handler for the model, on the vLLM / SGLang server already running
                    extra, env = _qwen_fc_policy(spec, bfcl_model)
                    pol.update(extra)
                    handler = (f"BFCL {bfcl_model} (QwenFCHandler) on {prov.engine} at {prov.base_url}, "
                               f"skip-server-setup")
                elif prov.name == "openai":
                    pol.update(base_url=prov.base_url, model=prov.model, api_key_env=prov.api_key_env)
                    request["num_threads"] = max(1, prov.concurrency)
                else:  # in-process model: an engine's concurrency; scripted replies stay in order (1 thread)
                    if prov.name == "local":
                        request["num_threads"] = max(1, prov.concurrency)
                    from envfactory.agent.openai_server import SERVED_TIMEOUT_S, serve
                    from envfactory.llm import LLMClient

                    client = LLMClient(prov, cache_mode="off")
                    served = spec.name or prov.model or "policy"
                    pol.update(base_url=stack.enter_context(serve(client, served)), model=served,
                               api_key_env=None, timeout_s=SERVED_TIMEOUT_S, max_retries=0)
                handler = handler or handler_label(spec).removeprefix("handler: ")
            else:
                handler = spec.kind
            out = run_runner("bfcl", request, work, timeout_s=24 * 3600, env=env)
        return self._result(ctx, categories, out, time.time() - t0, handler)

    def _result(self, ctx: EvalContext, categories: list[str], out: dict, wall_s: float,
                handler: str = "") -> BenchmarkResult:
        by_cat = {c["category"]: c for c in out["categories"]}
        if sorted(by_cat) != sorted(categories):
            raise RuntimeError(f"bfcl runner returned categories {sorted(by_cat)}, asked {sorted(categories)}")
        scores, caveats = [], []
        via = handler_label(ctx.policy)
        for cat in categories:
            c = by_cat[cat]
            outcomes = [float(o) for o in c["outcomes"]]
            if len(outcomes) != len(c["ids"]) or any(o not in (0.0, 1.0) for o in outcomes):
                raise RuntimeError(f"bfcl runner returned malformed outcomes for {cat}")
            score, stderr = mean_stderr(outcomes)
            if outcomes and abs(score - float(c["accuracy"])) > 1e-9:
                raise RuntimeError(f"bfcl {cat}: outcomes mean {score} != package accuracy {c['accuracy']}")
            if c.get("inference_errors"):
                caveats.append(f"{cat}: {c['inference_errors']}/{len(outcomes)} entries failed at inference")
            unscorable = len(c.get("unscorable_ids", []))
            if unscorable:
                caveats.append(f"{cat}: {unscorable} entries unscorable by any policy "
                               f"({', '.join(c['unscorable_ids'])})")
            scores.append(CategoryScore(
                category=cat, score=score, n=len(outcomes), stderr=stderr,
                metrics={"correct": float(c["correct_count"]), "inference_errors": float(c.get("inference_errors", 0)),
                         "unscorable": float(unscorable),
                         "max_score": (len(outcomes) - unscorable) / len(outcomes) if outcomes else 0.0},
                label="; ".join(x for x in (_label(cat, ctx.max_turns), via) if x)))
        total = sum(len(by_cat[c]["ids"]) for c in categories)
        if total and sum(by_cat[c].get("inference_errors", 0) for c in categories) == total:
            raise RuntimeError(f"bfcl: every entry failed at inference (is the policy endpoint up?); "
                               f"see {ctx.work_dir / 'bfcl' / 'runner.log'}")
        data_version = out.get("data_version") or DATA_VERSION
        if out.get("package_version") and out["package_version"] != PACKAGE_PIN:
            caveats.append(f"runner reports {out['package_version']}, expected {PACKAGE_PIN}")
        aggregates = bfcl_aggregates({s.category: s.score for s in scores if s.n},
                                     {s.category: s.n for s in scores},
                                     {c: int(by_cat[c].get("size") or len(by_cat[c]["ids"])) for c in categories})
        return BenchmarkResult(benchmark=self.name, status="scored", reason="; ".join(caveats),
                               policy=ctx.policy.name, categories=scores, adapter_version=self.version,
                               data_version=data_version, data_checksum=out["data_checksum"], wall_s=wall_s,
                               handler=handler, aggregates=aggregates)
