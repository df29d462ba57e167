"""Capability retention: lm-evaluation-harness (`lm-eval==0.4.13`) tasks on the model under test.

Tool-use training can cost general ability; this benchmark measures it on the same served model as the other
benchmarks, for the base model and every trained stage (`evaluation.per_stage`), and `results/<model>.json` gets
each trained stage's delta against base (evals/report.py).

lm-eval runs in this process: its dependencies resolve against the project's pins without changing any of them
(`pip install --dry-run` with the frozen environment as constraints). The model is reached the way BFCL-v3 and
tau2 reach it, through an OpenAI-compatible chat-completions endpoint (lm-eval's `local-chat-completions` model):
an `openai` provider is used as is (its `base_url`, e.g. vLLM, or the OpenAI API; the key from `api_key_env`, never
logged); any other provider (local transformers, scripted) is put behind `envfactory.agent.openai_server.serve`
for the run, which honours the tasks' stop sequences. Chat completions give no prompt log-probabilities, so
tasks must be generative (`generate_until`): gsm8k, ifeval, mmlu_pro, ..., not log-likelihood ones.

Tasks are the benchmark's categories (`evaluation.categories.capability`); default `capability_smoke`, our own
20-item task in `evals/capability/tasks/` (offline, labelled as a smoke task). lm-eval settings are
`evaluation.options.capability` (`CapabilityOptions`). Each task's score is lm-eval's own aggregate of its
headline metric (the task's first metric and filter unless `metrics` names one), n its documents, the standard
error over the per-document scores; every other metric of the task is reported beside it. Sampling follows each
task's own `generation_kwargs` (greedy for the smoke task), not `evaluation.trial_temperature`.

Policies: `oracle` answers every document with its gold target (1.0 on the smoke task), `idle` with empty text
(0). Per-document outputs go to `<work_dir>/capability/samples.jsonl` (work_dir: `evals/capability_work`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evals.base import BenchmarkResult, CategoryScore, EvalContext, PolicySpec, mean_stderr, unavailable

PACKAGE_PIN = "lm-eval==0.4.13"
TASKS_DIR = Path(__file__).resolve().parent / "tasks"
DEFAULT_TASKS = ["capability_smoke"]
SMOKE_LABEL = "in-repo smoke task (not a standard benchmark)"
OPENAI_API = "https://api.openai.com/v1"


class CapabilityOptions(BaseModel):
    """`evaluation.options.capability`: how lm-eval runs the tasks."""
    model_config = ConfigDict(extra="forbid")
    limit: int | None = Field(None, ge=1, description="documents per task (the first N); null = all. "
                                                      "evaluation.limit sizes the agent benchmarks, not this one")
    num_fewshot: int | None = Field(None, ge=0, description="few-shot examples for every task; null = each "
                                                            "task's own setting")
    apply_chat_template: bool = Field(True, description="send chat messages (needed by chat completions)")
    fewshot_as_multiturn: bool = Field(True, description="few-shot examples as earlier chat turns")
    system_instruction: str | None = None
    gen_kwargs: dict[str, Any] = Field(default_factory=dict, description="generation settings over every task's own "
                                                                         "(e.g. max_gen_toks for a reasoning model)")
    think_end_token: str | None = Field(None, description="a reasoning model's end-of-thinking marker (Qwen3: "
                                                          "</think>): only the text after it is scored")
    metrics: dict[str, str] = Field(default_factory=dict, description="task -> headline 'metric,filter' (e.g. "
                                                                      "gsm8k: 'exact_match,flexible-extract'); "
                                                                      "default: the task's first metric")


def local_task_names() -> list[str]:
    """The tasks shipped in evals/capability/tasks (one YAML each, named like its `task:`)."""
    return sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))


def task_manager(tasks: list[str]):
    """lm-eval's task index: only our folder when every task is ours (indexing lm-eval's ~200 folders costs
    seconds), lm-eval's own tasks too otherwise."""
    from lm_eval.tasks import TaskManager

    ours = set(local_task_names())
    return TaskManager(include_path=str(TASKS_DIR), include_defaults=not set(tasks) <= ours)


# ------------------------------------------------------------------------------------------ oracle and idle
def _gold_text(task, doc) -> str:
    target = task.doc_to_target(doc)
    if isinstance(target, list):
        target = target[0] if target else ""
    if isinstance(target, int) and not isinstance(target, bool) and task.config.doc_to_choice is not None:
        target = task.doc_to_choice(doc)[target]
    return str(target)


def oracle_answers(tm, tasks: list[str]) -> dict[str, str]:
    """Prompt text (a document's `doc_to_text`) -> its gold target, over every document of `tasks`."""
    answers: dict[str, str] = {}
    for task in tm.load(tasks)["tasks"].values():  # every leaf task, groups flattened
        for doc in task.eval_docs:
            answers[str(task.doc_to_text(doc)).strip()] = _gold_text(task, doc)
    return answers


def scripted_policy(kind: str, answers: dict[str, str]):
    """The oracle answers the last user turn with its document's gold target; idle says nothing."""

    def answer(request) -> dict:
        if kind == "idle":
            return {"content": ""}
        last = next((m.content for m in reversed(request.messages) if m.role == "user"), "").strip()
        if last in answers:
            return {"content": answers[last]}
        return {"content": next((a for q, a in answers.items() if q and last.endswith(q)), "")}

    return answer


# ------------------------------------------------------------------------------------------------ the model
def _endpoint(spec: PolicySpec, tm, tasks: list[str], stack: contextlib.ExitStack) -> dict[str, Any]:
    """Where lm-eval sends chat completions: an OpenAI-compatible provider as is, anything else served here."""
    from envfactory.agent.openai_server import SERVED_TIMEOUT_S, serve
    from envfactory.llm import LLMClient

    if spec.kind == "model":
        prov = spec.provider
        if prov is None:
            raise ValueError("capability: kind=model needs a provider")
        if prov.name == "openai":
            key = os.environ.get(prov.api_key_env or "OPENAI_API_KEY", "")
            return {"base_url": (prov.base_url or OPENAI_API).rstrip("/") + "/chat/completions", "model": prov.model,
                    "num_concurrent": max(1, prov.concurrency), "max_retries": prov.max_retries + 1,
                    "timeout": int(prov.timeout_s), "header": {"Authorization": f"Bearer {key}"}}
        client = LLMClient(prov, cache_mode="off")  # the policy is never served from a cache
        served = spec.name or prov.model or "policy"
    else:
        from envfactory.llm.providers.scripted import ScriptedProvider

        answers = oracle_answers(tm, tasks) if spec.kind == "oracle" else {}
        provider = ScriptedProvider.from_callable(scripted_policy(spec.kind, answers), model=spec.kind)
        client = LLMClient(provider.cfg, provider=provider, cache_mode="off")
        served = spec.kind
    url = stack.enter_context(serve(client, served))
    # One request at a time: an in-process model generates one at a time anyway, and order stays reproducible.
    return {"base_url": url + "/chat/completions", "model": served, "num_concurrent": 1, "max_retries": 1,
            "timeout": int(SERVED_TIMEOUT_S), "header": {"Authorization": "Bearer none"}}


def chat_model(endpoint: dict[str, Any], max_gen_toks: int, think_end_token: str | None = None):
    """lm-eval's `local-chat-completions` model, built here so the key never enters lm-eval's logged model_args."""
    from lm_eval.models.openai_completions import LocalChatCompletion

    return LocalChatCompletion(tokenizer_backend=None, tokenized_requests=False, max_gen_toks=max_gen_toks,
                               think_end_token=think_end_token, **endpoint)


# -------------------------------------------------------------------------------------------------- scoring
def _leaves(name: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    subs = group_subtasks.get(name) or []
    return [leaf for s in subs for leaf in _leaves(s, group_subtasks)] if subs else [name]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def headline_key(task: str, results: dict[str, Any], chosen: str | None) -> str:
    """'metric,filter' of the task's score: the one asked for, else the first metric lm-eval reports."""
    keys = [k for k, v in results.items() if "," in k and "_stderr," not in k and _number(v) is not None]
    if chosen is not None:
        if chosen not in keys:
            raise ValueError(f"capability: task {task} has no metric {chosen!r}; it reports {keys}")
        return chosen
    if not keys:
        raise ValueError(f"capability: task {task} reported no numeric metric ({sorted(results)})")
    return keys[0]


def category_score(task: str, out: dict[str, Any], opts: CapabilityOptions) -> tuple[CategoryScore, list[dict]]:
    """One task's CategoryScore from lm-eval's output, and its per-document rows."""
    res = out["results"][task]
    key = headline_key(task, res, opts.metrics.get(task))
    metric, _, filt = key.partition(",")
    score = float(res[key])
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"capability: {task} {key} = {score} is not in [0, 1]; name another metric in "
                         f"evaluation.options.capability.metrics")
    leaves = _leaves(task, out.get("group_subtasks", {}))
    rows, values = [], []
    for leaf in leaves:
        for s in out.get("samples", {}).get(leaf, []):
            if s.get("filter") != filt:
                continue
            v = _number(s.get(metric))
            rows.append({"task": leaf, "doc_id": s["doc_id"], "target": s.get("target"),
                         "response": (s.get("resps") or [[None]])[0][0], "filtered": (s.get("filtered_resps")
                                                                                     or [None])[0],
                         "metric": key, "score": v, "doc_hash": s.get("doc_hash")})
            values.append(v)
    n = len(rows)
    stderr = None
    if values and all(v is not None for v in values):
        mean, stderr = mean_stderr(values)
        if abs(mean - score) > 1e-6:  # not a plain mean (a weighted group, a corpus metric): lm-eval's stderr
            stderr = _number(res.get(f"{metric}_stderr,{filt}"))
    else:
        stderr = _number(res.get(f"{metric}_stderr,{filt}"))
    metrics = {k: float(v) for k, v in res.items()
               if "," in k and "_stderr," not in k and k != key and _number(v) is not None}
    n_samples = out.get("n-samples", {})
    original = sum(int(n_samples.get(leaf, {}).get("original", 0)) for leaf in leaves)
    labels = [f"lm-eval {key}"]
    if set(leaves) <= set(local_task_names()):
        labels.append(SMOKE_LABEL)
    if original and n < original:
        labels.append(f"first {n} of {original} documents")
    return CategoryScore(category=task, score=score, n=n, stderr=stderr, metrics=metrics,
                         label="; ".join(labels)), rows


def _checksum(rows: list[dict]) -> str:
    """sha256 over the evaluated documents (lm-eval's doc hashes, in task order): equal data, equal checksum."""
    h = hashlib.sha256()
    for r in rows:
        h.update(f"{r['task']}:{r['doc_id']}:{r['doc_hash']}\n".encode())
    return h.hexdigest()


class Capability:
    name = "capability"  # the registry sets it too
    version = "1"
    options_model = CapabilityOptions  # evaluation.options.capability, checked when the config is read

    def run(self, ctx: EvalContext) -> BenchmarkResult:
        t0 = time.time()
        spec = ctx.policy
        opts = CapabilityOptions.model_validate(ctx.options)
        tasks = list(dict.fromkeys(ctx.categories)) or list(DEFAULT_TASKS)
        try:
            import lm_eval
        except ImportError as e:
            return unavailable(self.name, self.version, spec.name, f"lm-eval is not installed ({PACKAGE_PIN}): {e}")
        logging.getLogger("lm_eval").setLevel(logging.WARNING)  # its per-request INFO lines would drown the log
        tm = task_manager(tasks)
        unknown = [t for t in tasks if t not in tm.all_tasks]
        if unknown:
            raise ValueError(f"capability: unknown lm-eval tasks {unknown} (ours: {local_task_names()})")
        with contextlib.ExitStack() as stack:
            endpoint = _endpoint(spec, tm, tasks, stack)
            out = lm_eval.simple_evaluate(
                model=chat_model(endpoint, spec.max_tokens, opts.think_end_token), tasks=tasks, task_manager=tm,
                limit=opts.limit, num_fewshot=opts.num_fewshot, apply_chat_template=opts.apply_chat_template,
                fewshot_as_multiturn=opts.fewshot_as_multiturn, system_instruction=opts.system_instruction,
                gen_kwargs=opts.gen_kwargs or None, log_samples=True, bootstrap_iters=0)
        if out is None:
            raise RuntimeError("capability: lm-eval returned no results")
        scores, rows = [], []
        for task in tasks:
            cat, task_rows = category_score(task, out, opts)
            scores.append(cat)
            rows += task_rows
        work = ctx.work_dir / "capability"
        work.mkdir(parents=True, exist_ok=True)
        (work / "samples.jsonl").write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
        versions = out.get("versions", {})
        data_version = f"{PACKAGE_PIN} " + ", ".join(f"{t} v{versions.get(t, '?')}" for t in tasks)
        return BenchmarkResult(benchmark=self.name, status="scored", policy=spec.name, categories=scores,
                               adapter_version=self.version, data_version=data_version,
                               data_checksum=_checksum(rows), wall_s=round(time.time() - t0, 1))


def load_contamination():
    """For the contamination audit: no tools; the documents of the in-repo tasks (standard tasks live on the hub
    and are not fetched for it)."""
    from evals.contamination import BenchData

    files = sorted(TASKS_DIR.glob("*.jsonl"))

    def docs():
        for p in files:
            yield f"capability/{p.name}", [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    return BenchData([], docs(), [str(p) for p in files])
