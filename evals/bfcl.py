"""BFCL-v3 (Berkeley Function-Calling Leaderboard) through the `bfcl-eval` package, in its own virtualenv.

The runner (`evals/runners/bfcl_runner.py`) executes inside the venv built from `evals/requirements/bfcl.txt`
and calls the package's own generation loop and checkers in-process; this side only decides how the runner
reaches the policy and turns its per-entry outcomes into a `BenchmarkResult`.

- kind=model: an OpenAI-compatible endpoint. `provider.name == "openai"` is used as is (its `base_url`, or
  the OpenAI API when unset; the key is read from `api_key_env` inside the runner). Any other provider
  (local transformers, scripted) is served in this process by `envfactory.agent.openai_server.serve`.
- kind=oracle: the runner answers with the gold calls; scores 1.0 on every supported category.
- kind=idle: the runner answers with empty text; scores 0 on every default category (relevance/irrelevance
  categories reward abstention, which is why they are not defaults).

Score per category = accuracy under the package's checker (AST match for single-turn, state + response
execution match per turn for multi-turn); `limit` takes the first N entries per category in id order.
"""

from __future__ import annotations

import contextlib
import time

from evals.base import (
    BenchmarkResult,
    CategoryScore,
    EvalContext,
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


class BFCL:
    version = "1"

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
                if prov.name == "openai":
                    pol.update(base_url=prov.base_url, model=prov.model, api_key_env=prov.api_key_env)
                    request["num_threads"] = max(1, prov.concurrency)
                else:  # in-process model: one request at a time (keeps scripted responses in order, too)
                    from envfactory.agent.openai_server import SERVED_TIMEOUT_S, serve
                    from envfactory.llm import LLMClient

                    client = LLMClient(prov, cache_mode="off")
                    served = spec.name or prov.model or "policy"
                    pol.update(base_url=stack.enter_context(serve(client, served)), model=served,
                               api_key_env=None, timeout_s=SERVED_TIMEOUT_S, max_retries=0)
            out = run_runner("bfcl", request, work, timeout_s=24 * 3600)
        return self._result(ctx, categories, out, time.time() - t0)

    def _result(self, ctx: EvalContext, categories: list[str], out: dict, wall_s: float) -> BenchmarkResult:
        by_cat = {c["category"]: c for c in out["categories"]}
        if sorted(by_cat) != sorted(categories):
            raise RuntimeError(f"bfcl runner returned categories {sorted(by_cat)}, asked {sorted(categories)}")
        scores, caveats = [], []
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
                label=_label(cat, ctx.max_turns)))
        total = sum(len(by_cat[c]["ids"]) for c in categories)
        if total and sum(by_cat[c].get("inference_errors", 0) for c in categories) == total:
            raise RuntimeError(f"bfcl: every entry failed at inference (is the policy endpoint up?); "
                               f"see {ctx.work_dir / 'bfcl' / 'runner.log'}")
        data_version = out.get("data_version") or DATA_VERSION
        if out.get("package_version") and out["package_version"] != PACKAGE_PIN:
            caveats.append(f"runner reports {out['package_version']}, expected {PACKAGE_PIN}")
        return BenchmarkResult(benchmark=self.name, status="scored", reason="; ".join(caveats),
                               policy=ctx.policy.name, categories=scores, adapter_version=self.version,
                               data_version=data_version, data_checksum=out["data_checksum"], wall_s=wall_s)
