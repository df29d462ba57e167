"""MCP-Atlas: multi-step tool use over MCP servers, scored by claim coverage of the final answer.

Per task the agent sees the prompt and the task's ENABLED_TOOLS (named `<server>_<tool>`). Tools of
servers that run offline are served by project-owned MCP servers (`evals/mcp_servers/`) over stdio
through the `mcp` client, on a per-run copy of the benchmark's files (`/data`) and memory seed, reset
before every task. Tools that need the internet replay the outputs recorded in the gold TRAJECTORY
for a call with the same tool and the same (normalized JSON) arguments, and otherwise answer with an
`unavailable_offline` error; categories scored this way carry `label="replay-based"`.

Scoring follows the benchmark: an LLM judge marks each GTFA claim fulfilled (1), partially
fulfilled (0.5) or not fulfilled (0) by the final answer; coverage is the mean; a task passes at
coverage >= 0.75 (the headline score is that pass rate). No judge configured -> `unavailable`.

Data: the 10-task sample vendored in `evals/data/mcp_atlas` by default; `ctx.data_dir` for the full
500-task release, fetched explicitly with `python -m evals.mcp_atlas fetch DEST --sha256 HEX`.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envfactory.agent.loop import run_episode
from envfactory.llm import ChatRequest, LLMClient, Message, ToolCall

from .base import (BenchmarkResult, CategoryScore, EvalContext, dir_checksum, file_sha256, idle_policy, mean_stderr,
                   model_policy, pass_hat_k, register_benchmark, trial_seed, unavailable)
from .mcp_servers import LOCAL_SERVERS, VIRTUAL_ROOT

NAME = "mcp_atlas"
ADAPTER_VERSION = "1"
SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "mcp_atlas"  # vendored sample (MIT, see its LICENSE)
# The public 500-task release (one parquet file; Hugging Face's converted copy of its single split).
# Its sha256 is pinned by whoever first fetches and checks it; until then pass one explicitly.
FULL_SET_URL = ("https://huggingface.co/datasets/ScaleAI/MCP-Atlas/resolve/refs%2Fconvert%2Fparquet/"
                "default/train/0000.parquet")
FULL_SET_SHA256 = ""
PASS_THRESHOLD = 0.75
VERDICT_SCORES = {"fulfilled": 1.0, "partially_fulfilled": 0.5, "not_fulfilled": 0.0}
MAX_TOOL_CHARS = 20_000  # recorded pages run to 100k+ characters; keep one result within a context budget
CODE_STORAGE = "repos/mcp_code_executor_workspace"  # where MCP-Atlas recordings put executed code
# The benchmark harness's system prompt (scaleapi/mcp-atlas, mcp_completion_script.py).
SYSTEM_PROMPT = ("Role: You are a factual, tool-aware assistant connected to a variety of tools. Use the available "
                 "tools to answer the user query. Do not ask the user for clarification; fully complete the task "
                 "using the information provided in the prompt.")


# ---------------------------------------------------------------------------------------------- data

@dataclass
class Task:
    id: str
    prompt: str
    enabled_tools: list[str]
    trajectory: list[dict]
    claims: list[str]

    def gold_turns(self) -> list[tuple[str, list[ToolCall]]]:
        """The gold assistant turns that call tools: (text, calls with parsed arguments)."""
        turns = []
        for m in self.trajectory:
            if m.get("role") == "assistant" and m.get("tool_calls"):
                turns.append((_text(m.get("content")), [ToolCall(id=c.get("id", ""), name=c["function"]["name"],
                                                                 arguments=_args(c["function"].get("arguments")))
                                                        for c in m["tool_calls"]]))
        return turns

    def recorded_outputs(self) -> list[tuple[str, dict, Any]]:
        """(tool, arguments, recorded content) for every gold call with a recorded tool message."""
        outputs = {m.get("tool_call_id"): m.get("content") for m in self.trajectory if m.get("role") == "tool"}
        return [(c.name, c.arguments, outputs[c.id]) for _, calls in self.gold_turns() for c in calls
                if c.id in outputs and isinstance(c.arguments, dict)]


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(c.get("text", "")) if isinstance(c, dict) else str(c) for c in content)
    return content or ""


def _args(raw: Any) -> dict | str:
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return raw
    return parsed if isinstance(parsed, dict) else raw


def _json_field(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            try:
                return ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return value
    return value


def parse_claims(value: Any) -> list[str]:
    """GTFA_CLAIMS: a JSON list of strings (or of {"claim": ...}); plain text falls back to one per line."""
    parsed = _json_field(value)
    if isinstance(parsed, list):
        items = [c.get("claim", "") if isinstance(c, dict) else str(c) for c in parsed]
    else:
        items = str(parsed).splitlines()
    return [c.strip() for c in items if c and c.strip()]


def load_tasks(path: Path) -> list[Task]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        import csv

        csv.field_size_limit(1 << 30)
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    tasks = []
    for r in rows:
        tools, traj = _json_field(r["ENABLED_TOOLS"]), _json_field(r["TRAJECTORY"])
        tools = [t["name"] if isinstance(t, dict) else str(t) for t in tools]
        tasks.append(Task(str(r["TASK"]), str(r["PROMPT"]), tools, traj if isinstance(traj, list) else [],
                          parse_claims(r["GTFA_CLAIMS"])))
    return tasks


def fetch_full_set(dest: Path, url: str = FULL_SET_URL, sha256: str = FULL_SET_SHA256) -> Path:
    """Download the full task file into `dest` (only when asked; never from a benchmark run) and verify it."""
    if not sha256:
        raise ValueError("refusing to fetch without an expected sha256 (pass --sha256, or pin FULL_SET_SHA256)")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / ("tasks.parquet" if url.split("?")[0].endswith(".parquet") else "tasks.csv")
    tmp = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(url, timeout=120) as resp, open(tmp, "wb") as f:  # an explicit, checksummed URL
        shutil.copyfileobj(resp, f)
    got = file_sha256(tmp)
    if got != sha256.lower():
        tmp.unlink()
        raise ValueError(f"checksum mismatch for {url}: got {got}, expected {sha256}")
    tmp.replace(target)
    (dest / "source.json").write_text(json.dumps({"url": url, "sha256": got}, indent=1))
    return target


def resolve_data(data_dir: Path | None) -> tuple[Path, Path, Path]:
    """(tasks file, files dir, memory seed) for a data dir; files and memory default to the shared sample's."""
    root = data_dir or SAMPLE_DIR
    candidates = [root / "tasks.parquet", root / "tasks.csv", root / "sample_tasks.csv",
                  *sorted(root.glob("*.parquet")), *sorted(root.glob("*.csv"))]
    tasks = next((p for p in candidates if p.is_file()), None)
    if tasks is None:
        raise FileNotFoundError(f"no MCP-Atlas task file in {root} (fetch the full set first: "
                                f"python -m evals.mcp_atlas fetch {root} --sha256 HEX)")
    source = root / "source.json"
    if source.is_file():  # a fetched set: re-verify, so a truncated or edited file is never scored
        expected = json.loads(source.read_text()).get("sha256", "")
        if expected and file_sha256(tasks) != expected:
            raise ValueError(f"{tasks} does not match the sha256 recorded in {source}")
    files = root / "files" if (root / "files").is_dir() else SAMPLE_DIR / "files"
    memory_dir = root / "memory" if (root / "memory").is_dir() else SAMPLE_DIR / "memory"
    seeds = sorted(memory_dir.glob("*.json*"))
    return tasks, files, seeds[0] if seeds else memory_dir / "memories-for-mcp.json"


# -------------------------------------------------------------------------------------------- replay

def canonical_args(args: Any) -> str:
    """Normalized JSON of call arguments: sorted keys, no whitespace, integral floats as ints (200.0 == 200)."""
    def norm(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(args), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _recorded_result(content: Any) -> dict:
    items = content if isinstance(content, list) else [{"type": "text", "text": _text(content)}]
    items = [dict(i) if isinstance(i, dict) else {"type": "text", "text": str(i)} for i in items]
    is_error = any(i.pop("isError", False) for i in items)
    return {"content": items, "isError": is_error}


class ReplayBook:
    """Recorded outputs of gold calls, keyed by (tool, normalized arguments); a task's own recording first."""

    def __init__(self, tasks: list[Task]):
        self._book: dict[tuple[str, str], list[tuple[str, Any]]] = {}
        self.arg_samples: dict[str, list[dict]] = {}
        for t in tasks:
            for tool, args, content in t.recorded_outputs():
                self._book.setdefault((tool, canonical_args(args)), []).append((t.id, content))
                self.arg_samples.setdefault(tool, []).append(args)

    def lookup(self, task_id: str, tool: str, args: Any) -> dict | None:
        found = self._book.get((tool, canonical_args(args)))
        if not found:
            return None
        own = [c for tid, c in found if tid == task_id]
        return _recorded_result((own or [c for _, c in found])[0])


class ReplaySession:
    """Duck-typed session for tools that need the internet: recorded output, or a structured offline error."""

    def __init__(self, book: ReplayBook, task_id: str):
        self.book, self.task_id = book, task_id
        self.hits = self.misses = 0

    def call(self, tool: str, arguments: dict) -> dict:
        result = self.book.lookup(self.task_id, tool, arguments)
        if result is None:
            self.misses += 1
            return {"error": {"kind": "unavailable_offline",
                              "message": f"{tool} needs the internet, which this offline evaluation does not "
                                         "reach, and no recorded output matches these arguments."}}
        self.hits += 1
        return result


def _json_type(v: Any) -> dict:
    if isinstance(v, bool):
        return {"type": "boolean"}
    if isinstance(v, (int, float)):
        return {"type": "number"}
    if isinstance(v, list):
        return {"type": "array"}
    if isinstance(v, dict):
        return {"type": "object"}
    return {"type": "string"}


def replay_tool_schema(name: str, book: ReplayBook, overrides: dict[str, dict]) -> dict:
    """OpenAI tool for a replayed tool: the published schema when given, else one inferred from recorded calls."""
    server, _, short = name.partition("_")
    if name in overrides:
        o = overrides[name]
        return _openai_tool(name, o.get("description", ""), o.get("input_schema") or o.get("inputSchema") or {})
    props: dict[str, dict] = {}
    for args in book.arg_samples.get(name, []):
        for k, v in args.items():
            props.setdefault(k, _json_type(v))
    return _openai_tool(name, f"Tool `{short}` of the `{server}` MCP server.", {"type": "object", "properties": props})


def _openai_tool(name: str, description: str, schema: dict) -> dict:
    return {"type": "function", "function": {"name": name, "description": description or "",
                                             "parameters": schema or {"type": "object", "properties": {}}}}


# ------------------------------------------------------------------------------------------ harness

def _fresh_copy(src: Path, dst: Path) -> None:
    """Writable copy (the shared data is read-only); replaces dst."""
    if dst.exists():
        shutil.rmtree(dst)
    for dirpath, _, filenames in os.walk(src):
        out = dst / os.path.relpath(dirpath, src)
        out.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            shutil.copyfile(os.path.join(dirpath, name), out / name)


class Harness:
    """Local MCP servers for one run, on a run directory whose `/data` and memory are reset per task."""

    def __init__(self, run_dir: Path, files: Path, memory_seed: Path, call_timeout_s: float = 120.0):
        from .mcp_servers.client import MCPServers, server_params  # the mcp client: imported when a run needs it

        self.run_dir, self.files, self.memory_seed = run_dir, files, memory_seed
        self.data, self.memory = run_dir / "data", run_dir / "memory.jsonl"
        self.reset()
        env = {"ALLOWED_DIR": str(self.data), "MCP_VIRTUAL_ROOT": VIRTUAL_ROOT, "SANDBOX_WRITE_ROOT": str(run_dir),
               "MEMORY_FILE_PATH": str(self.memory), "CODE_STORAGE_DIR": f"{VIRTUAL_ROOT}/{CODE_STORAGE}"}
        self.servers = MCPServers({n: server_params(m, env, cwd=str(run_dir)) for n, m in LOCAL_SERVERS.items()},
                                  call_timeout_s=call_timeout_s, log_path=run_dir / "servers.log")

    def reset(self) -> None:
        _fresh_copy(self.files, self.data)
        (self.data / CODE_STORAGE).mkdir(parents=True, exist_ok=True)
        if self.memory_seed.is_file():
            shutil.copyfile(self.memory_seed, self.memory)
        else:
            self.memory.write_text("")

    def close(self) -> None:
        self.servers.close()

    def session(self, server: str):
        from .mcp_servers.client import ServerSession

        return ServerSession(self.servers, server)

    def local_tools(self, server: str) -> dict[str, Any]:
        return {t.name: t for t in self.servers.tools(server)}


@dataclass
class Offer:
    tools: list[dict] = field(default_factory=list)
    routes: dict[str, tuple[str, str]] = field(default_factory=dict)
    replayed: list[str] = field(default_factory=list)


def offer_tools(task: Task, harness: Harness, book: ReplayBook, overrides: dict[str, dict]) -> Offer:
    """Route each enabled tool to its local server when that server serves it, else to replay."""
    offer = Offer()
    for name in task.enabled_tools:
        server, _, short = name.partition("_")
        local = harness.local_tools(server) if server in LOCAL_SERVERS else {}
        if short in local:
            t = local[short]
            offer.tools.append(_openai_tool(name, t.description or "", dict(t.input_schema)))
            offer.routes[name] = (server, short)
        else:
            offer.tools.append(replay_tool_schema(name, book, overrides))
            offer.routes[name] = ("replay", name)
            offer.replayed.append(name)
    return offer


# -------------------------------------------------------------------------------------------- judge

JUDGE_SYSTEM = (
    "You evaluate an AI assistant's final response against a list of ground-truth claims. For each claim decide "
    "whether the response covers it: 'fulfilled' when the response states the claim's facts (wording may differ; "
    "numbers must agree up to the rounding the claim uses), 'partially_fulfilled' when only part of the claim's "
    "facts are stated or a value is imprecise, 'not_fulfilled' when the claim is missing or contradicted. Judge "
    "only what the response says, not what it could have said. Return one verdict per claim, with its index.")
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"verdicts": {"type": "array", "items": {
        "type": "object",
        "properties": {"claim_index": {"type": "integer"},
                       "coverage_outcome": {"type": "string", "enum": list(VERDICT_SCORES)},
                       "justification": {"type": "string"}},
        "required": ["claim_index", "coverage_outcome", "justification"]}}},
    "required": ["verdicts"],
}


def _parse_json_object(text: str) -> dict:
    text = text.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    start, end = text.find("{"), text.rfind("}")
    return json.loads(text[start:end + 1])


def judge_coverage(client: LLMClient, task: Task, answer: str) -> tuple[float, list[str], bool]:
    """(coverage, per-claim verdicts, judge ok). An empty answer covers nothing: no judge call."""
    if not answer.strip() or not task.claims:
        return 0.0, ["not_fulfilled"] * len(task.claims), True
    payload = {"task": task.prompt, "claims": [{"index": i, "claim": c} for i, c in enumerate(task.claims)],
               "response": answer}
    req = ChatRequest(model=client.cfg.model, temperature=0.0, max_tokens=2048, json_schema=JUDGE_SCHEMA,
                      messages=[Message(role="system", content=JUDGE_SYSTEM),
                                Message(role="user", content=json.dumps(payload, ensure_ascii=False, indent=1))],
                      metadata={"step": "judge", "benchmark": NAME, "task": task.id})
    verdicts = ["not_fulfilled"] * len(task.claims)
    try:
        for v in _parse_json_object(client.chat(req).content)["verdicts"]:
            i, outcome = int(v["claim_index"]), str(v["coverage_outcome"])
            if 0 <= i < len(verdicts) and outcome in VERDICT_SCORES:
                verdicts[i] = outcome
    except (ValueError, KeyError, TypeError):
        return 0.0, verdicts, False
    return sum(VERDICT_SCORES[v] for v in verdicts) / len(verdicts), verdicts, True


# ------------------------------------------------------------------------------------------ policies

def oracle_policy(task: Task):
    """Replays the gold trajectory's calls, then answers with the gold claims."""
    turns, answer = task.gold_turns(), "\n".join(task.claims)

    def act(messages: list[Message], tools: list[dict]) -> Message:
        i = sum(1 for m in messages if m.role == "assistant")
        if i < len(turns):
            return Message(role="assistant", content=turns[i][0], tool_calls=turns[i][1])
        return Message(role="assistant", content=answer)

    return act


def final_answer(messages: list[Message]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "assistant" and m.content.strip()), "")


# --------------------------------------------------------------------------------------------- run

@register_benchmark(NAME)
class MCPAtlas:
    version = ADAPTER_VERSION

    def run(self, ctx: EvalContext) -> BenchmarkResult:
        spec = ctx.policy
        if ctx.judge is None:
            return unavailable(NAME, self.version, spec.name, "MCP-Atlas scores claim coverage with an LLM judge; "
                               "no judge endpoint is configured (ctx.judge)")
        if ctx.categories and "default" not in ctx.categories:
            return unavailable(NAME, self.version, spec.name, f"no such category {ctx.categories}; MCP-Atlas data "
                               "has one category, 'default'")
        try:
            tasks_file, files, memory_seed = resolve_data(ctx.data_dir)
        except (FileNotFoundError, ValueError) as e:
            return unavailable(NAME, self.version, spec.name, str(e))
        all_tasks = load_tasks(tasks_file)
        tasks = all_tasks[:ctx.limit] if ctx.limit else all_tasks
        book = ReplayBook(all_tasks)  # every recording of the set may answer a matching call
        schema_file = tasks_file.parent / "tool_schemas.json"
        overrides = json.loads(schema_file.read_text()) if schema_file.is_file() else {}
        judge = LLMClient(ctx.judge, cache_dir=ctx.cache_dir, cache_mode="use" if ctx.cache_dir else "off")
        idle = idle_policy() if spec.kind == "idle" else None

        t0 = time.time()
        out_dir = Path(ctx.work_dir) / NAME
        out_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=out_dir))
        harness = Harness(run_dir, files, memory_seed)
        stats = {"tool_calls": 0, "local_calls": 0, "replay_hits": 0, "replay_misses": 0, "judge_errors": 0}
        passes, passes_half, coverages, per_task_trials, replayed_any = [], [], [], [], False
        try:
            servers = sorted({n.partition("_")[0] for t in tasks for n in t.enabled_tools} & set(LOCAL_SERVERS))
            harness.servers.start(servers)
            with open(out_dir / "episodes.jsonl", "w", encoding="utf-8") as log:
                for task in tasks:
                    offer = offer_tools(task, harness, book, overrides)
                    replayed_any |= bool(offer.replayed)
                    trial_cov = []
                    for trial in range(ctx.num_trials):
                        harness.reset()
                        replay = ReplaySession(book, task.id)
                        sessions = {s: harness.session(s) for s in LOCAL_SERVERS} | {"replay": replay}
                        seed = trial_seed(ctx.seed, task.id, trial)
                        policy = (model_policy(spec, seed) if spec.kind == "model" else idle or oracle_policy(task))
                        max_turns = ctx.max_turns if spec.kind != "oracle" else max(ctx.max_turns,
                                                                                   len(task.gold_turns()) + 1)
                        messages = [Message(role="system", content=SYSTEM_PROMPT),
                                    Message(role="user", content=task.prompt)]
                        ep = run_episode(policy, sessions, offer.routes, offer.tools, messages, max_turns,
                                         max_tool_chars=MAX_TOOL_CHARS)
                        answer = final_answer(ep.messages)
                        coverage, verdicts, ok = judge_coverage(judge, task, answer)
                        stats["judge_errors"] += not ok
                        stats["tool_calls"] += len(ep.calls)
                        stats["local_calls"] += sum(c.env != "replay" for c in ep.calls)
                        stats["replay_hits"] += replay.hits
                        stats["replay_misses"] += replay.misses
                        trial_cov.append(coverage)
                        log.write(json.dumps({"task": task.id, "trial": trial, "coverage": coverage,
                                              "verdicts": verdicts, "answer": answer, "stopped_by": ep.stopped_by,
                                              "calls": [{"tool": c.tool, "env": c.env, "arguments": c.arguments,
                                                         "error": bool("error" in c.result or c.result.get("isError"))}
                                                        for c in ep.calls]}, ensure_ascii=False) + "\n")
                    per_task_trials.append((len(trial_cov), sum(c >= PASS_THRESHOLD for c in trial_cov)))
                    passes.append(sum(c >= PASS_THRESHOLD for c in trial_cov) / len(trial_cov))
                    passes_half.append(sum(c >= 0.5 for c in trial_cov) / len(trial_cov))
                    coverages.append(sum(trial_cov) / len(trial_cov))
        finally:
            harness.close()
            shutil.rmtree(run_dir, ignore_errors=True)

        score, stderr = mean_stderr(passes)
        metrics = {"pass@0.5": mean_stderr(passes_half)[0], "mean_coverage": mean_stderr(coverages)[0],
                   **{k: float(v) for k, v in stats.items()}}
        pass_k = ({str(k): pass_hat_k(per_task_trials, k) for k in range(1, ctx.num_trials + 1)}
                  if ctx.num_trials > 1 else {})
        category = CategoryScore(category="default", score=score, n=len(tasks), stderr=stderr, pass_k=pass_k,
                                 metrics=metrics, label="replay-based" if replayed_any else "")
        reason = ""
        if replayed_any:
            reason = (f"tools needing the internet replayed recorded outputs ({stats['replay_hits']} matched, "
                      f"{stats['replay_misses']} unmatched calls answered 'unavailable offline')")
        if stats["judge_errors"]:
            reason += f"; {stats['judge_errors']} judge replies unparseable (scored 0)"
        return BenchmarkResult(benchmark=NAME, status="scored", reason=reason.lstrip("; "), policy=spec.name,
                               categories=[category], adapter_version=self.version,
                               data_version=f"{tasks_file.name}:{len(all_tasks)}",
                               data_checksum=_data_checksum(tasks_file, files, memory_seed),
                               judge_model=ctx.judge.model,
                               wall_s=time.time() - t0)


def _data_checksum(tasks_file: Path, files: Path, memory_seed: Path) -> str:
    """The task file, the files tasks read and the memory seed: all of them decide the scores."""
    parts = [dir_checksum(p) for p in (tasks_file, files, memory_seed) if p.exists()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m evals.mcp_atlas", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download the full task set into DEST and verify its sha256")
    f.add_argument("dest", type=Path)
    f.add_argument("--url", default=FULL_SET_URL)
    f.add_argument("--sha256", default=FULL_SET_SHA256)
    args = p.parse_args(argv)
    print(fetch_full_set(args.dest, args.url, args.sha256))


if __name__ == "__main__":
    main()
