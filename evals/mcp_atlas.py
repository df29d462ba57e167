"""MCP-Atlas: multi-step tool use over MCP servers, scored by claim coverage of the final answer.

Per task the agent sees the prompt and the task's ENABLED_TOOLS (named `<server>_<tool>`). Tools of
servers that run offline are served by project-owned MCP servers (`evals/mcp_servers/`) over stdio
through the `mcp` client, on a per-run copy of the benchmark's files (`/data`) and memory seed, reset
before every task. Tools that need the internet replay the outputs recorded in the gold TRAJECTORY
for a call with the same tool and the same (normalized JSON) arguments, and otherwise answer with an
`unavailable_offline` error; categories scored this way carry `label="replay-based"`. A replayed tool is
offered with its published input schema when one is known, else with one inferred from every recorded call
of it in the task set, else (no recorded call has arguments) without parameters. MCP-Atlas publishes no
tool list in its repository or dataset: its servers list their tools at run time (the benchmark
environment's `POST /list-tools`); save that reply as `tool_schemas.json` beside the task file to use it
(`load_tool_list`). A row's ENABLED_TOOLS entry that carries a schema counts as published too. How many
replayed tools got each source is in the result (metrics `replay_tools_*`, and its notes).

Scoring is the benchmark's (scaleapi/mcp-atlas, services/scoring/score_claims.py): an LLM judge sees one
GTFA claim and the final answer per call, with the benchmark's own prompt, and marks the claim fulfilled
(1), partially fulfilled (0.5) or not fulfilled (0); an empty answer scores 0 without a judge call; a
task's coverage is the mean over its claims (rounded to 3 places); a task passes at coverage >= 0.75 and
the headline score is that pass rate. Per-claim verdicts go to `episodes.jsonl`. No judge -> `unavailable`.

Rows are validated before anything runs: a malformed row (broken JSON, a gold tool call without
`function`, a truncated row, no claims, ...) is reported with its task id and skipped (metric
`skipped_rows`, the reasons in the result's `reason`), or fails the run under `evaluation.strict`.

Data: the 10-task sample vendored in `evals/data/mcp_atlas` by default; `ctx.data_dir` for the full
500-task release, fetched explicitly with `envfactory benchmarks fetch mcp_atlas DEST --sha256 HEX`.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envfactory.agent.loop import run_episode
from envfactory.llm import ChatRequest, LLMClient, Message, ToolCall

from .base import (
    BenchmarkResult,
    CategoryScore,
    EvalContext,
    dir_checksum,
    file_sha256,
    idle_policy,
    mean_stderr,
    model_policy,
    pass_hat_k,
    trial_seed,
    unavailable,
)
from .mcp_servers import LOCAL_SERVERS, VIRTUAL_ROOT

NAME = "mcp_atlas"
ADAPTER_VERSION = "2"  # 2: per-claim judging with the benchmark's prompt, row validation, oracle from tool outputs
SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "mcp_atlas"  # vendored sample (MIT, see its LICENSE)
# The public 500-task release (one parquet file; Hugging Face's converted copy of its single split).
# Its sha256 is pinned by whoever first fetches and checks it; until then pass one explicitly.
FULL_SET_URL = ("https://huggingface.co/datasets/ScaleAI/MCP-Atlas/resolve/refs%2Fconvert%2Fparquet/"
                "default/train/0000.parquet")
FULL_SET_SHA256 = ""
PASS_THRESHOLD = 0.75
VERDICT_SCORES = {"fulfilled": 1.0, "partially_fulfilled": 0.5, "not_fulfilled": 0.0}
MAX_TOOL_CHARS = 20_000  # recorded pages run to 100k+ characters; keep one result within a context budget
MAX_RESPONSE_CHARS = 500_000  # the benchmark cuts longer answers before judging them
CODE_STORAGE = "repos/mcp_code_executor_workspace"  # where MCP-Atlas recordings put executed code
REQUIRED_COLUMNS = ("TASK", "PROMPT", "ENABLED_TOOLS", "TRAJECTORY", "GTFA_CLAIMS")
# Old tool names in recorded trajectories -> the names ENABLED_TOOLS uses (the benchmark's own table, in
# services/mcp_eval/extract_mcp_servers_per_task.py), so the oracle and the replay book use the offered name.
GOLD_TOOL_ALIASES = {
    "brave_brave_web_search": "brave-search_brave_web_search",
    "MongoDB_aggregate": "mongodb_aggregate",
    "MongoDB_collection-schema": "mongodb_collection-schema",
    "MongoDB_count": "mongodb_count",
    "MongoDB_find": "mongodb_find",
    "MongoDB_list-collections": "mongodb_list-collections",
    "MongoDB_list-databases": "mongodb_list-databases",
}
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
    tool_specs: dict[str, dict] = field(default_factory=dict)  # input schemas a row publishes in ENABLED_TOOLS

    def gold_turns(self) -> list[tuple[str, list[ToolCall]]]:
        """The gold assistant turns that call tools: (text, calls with parsed arguments, under their offered
        names: `GOLD_TOOL_ALIASES`)."""
        turns = []
        for m in self.trajectory:
            if m.get("role") == "assistant" and m.get("tool_calls"):
                calls = [ToolCall(id=str(c.get("id") or ""), name=gold_tool_name(c["function"]["name"]),
                                  arguments=_args(c["function"].get("arguments")))
                         for c in m["tool_calls"]]
                turns.append((_text(m.get("content")), calls))
        return turns

    def gold_calls(self) -> list[ToolCall]:
        return [c for _, calls in self.gold_turns() for c in calls]

    def recorded_outputs(self) -> list[tuple[str, dict, Any]]:
        """(tool, arguments, recorded content) for every gold call with a recorded tool message."""
        outputs = {m.get("tool_call_id"): m.get("content") for m in self.trajectory if m.get("role") == "tool"}
        return [(c.name, c.arguments, outputs[c.id]) for c in self.gold_calls()
                if c.id and c.id in outputs and isinstance(c.arguments, dict)]


def gold_tool_name(name: str) -> str:
    return GOLD_TOOL_ALIASES.get(name, name)


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


class RowError(ValueError):
    """Why one task row cannot be scored."""


@dataclass(frozen=True)
class SkippedRow:
    task: str  # the row's TASK id, or `row N` (1-based data row) when it has none
    reason: str

    def __str__(self) -> str:
        return f"{self.task}: {self.reason}"


class MalformedRows(ValueError):
    """Raised under `evaluation.strict` when the task file has malformed rows (all of them listed)."""

    def __init__(self, source: str, skipped: list[SkippedRow]):
        self.skipped = skipped
        super().__init__(f"{source}: {len(skipped)} malformed MCP-Atlas rows (evaluation.strict): "
                         + "; ".join(map(str, skipped)))


def _parse_field(column: str, value: Any) -> Any:
    """A JSON (or Python-literal, as some exports write) column; anything unparseable is a RowError."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as e:
        error = e
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise RowError(f"{column} is not valid JSON ({error})") from None


def _kind(value: Any) -> str:
    return type(value).__name__


def _parse_tools(value: Any) -> tuple[list[str], dict[str, dict]]:
    tools = _parse_field("ENABLED_TOOLS", value)
    if not isinstance(tools, list):
        raise RowError(f"ENABLED_TOOLS is a {_kind(tools)}, not a list of tool names")
    if not tools:
        raise RowError("ENABLED_TOOLS is empty")
    names, specs = [], {}
    for i, t in enumerate(tools):
        name = t.get("name") if isinstance(t, dict) else t
        if not isinstance(name, str) or not name.strip():
            raise RowError(f"ENABLED_TOOLS[{i}] is a {_kind(t)} without a tool name")
        names.append(name.strip())
        schema = next((t[k] for k in ("input_schema", "inputSchema", "parameters") if isinstance(t, dict)
                       and isinstance(t.get(k), dict)), None)
        if schema is not None:
            specs[name.strip()] = {"description": str(t.get("description") or ""), "input_schema": schema}
    return names, specs


def _parse_trajectory(value: Any) -> list[dict]:
    traj = _parse_field("TRAJECTORY", value)
    if not isinstance(traj, list):
        raise RowError(f"TRAJECTORY is a {_kind(traj)}, not a list of messages")
    calls = 0
    for i, m in enumerate(traj):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise RowError(f"TRAJECTORY[{i}] is a {_kind(m)}, not a message with a role")
        if m["role"] != "assistant" or not m.get("tool_calls"):
            continue
        if not isinstance(m["tool_calls"], list):
            raise RowError(f"TRAJECTORY[{i}].tool_calls is a {_kind(m['tool_calls'])}, not a list")
        for j, c in enumerate(m["tool_calls"]):
            where = f"TRAJECTORY[{i}].tool_calls[{j}]"
            fn = c.get("function") if isinstance(c, dict) else None
            if not isinstance(fn, dict):
                raise RowError(f"{where} has no `function`")
            if not isinstance(fn.get("name"), str) or not fn["name"].strip():
                raise RowError(f"{where}.function has no name")
            if not isinstance(_args(fn.get("arguments")), dict):
                raise RowError(f"{where}.function.arguments is not a JSON object")
            calls += 1
    if not calls:
        raise RowError("TRAJECTORY has no tool calls (nothing to replay)")
    return traj


def _clean_claim(text: str) -> str:
    """One claim as the benchmark's extract_claims cleans it: no bullet or number prefix, plain quotes and
    dashes, no trailing quote."""
    text = re.sub(r"^\d+[.)]\s*", "", re.sub(r"^[-*•·◦‣⁃]\s*", "", text.strip()))
    for a, b in (("\u201c", '"'), ("\u201d", '"'), ("\u2018", "'"), ("\u2019", "'"), ("\u2013", "-"),
                 ("\u2014", "-"), ("\u2026", "...")):
        text = text.replace(a, b)
    text = re.sub(r"[\"']+\.*$", "", re.sub(r"[.\s]*[\"']+ $", "", text))
    return text.strip(" \t\n\r")


def parse_claims(value: Any) -> list[str]:
    """GTFA_CLAIMS the benchmark's way: a JSON (or Python) list of claims, else text split on the first of its
    separators that occurs (bullets, numbering, ';', '||'), else on lines; claims of 3 characters or fewer are
    dropped."""
    if value is None:
        return []
    items: list | None = value if isinstance(value, list) else None
    if items is None:
        text = str(value).strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = _parse_field("GTFA_CLAIMS", text)
                items = parsed if isinstance(parsed, list) else None
            except RowError:
                items = None
        if items is None:
            for sep in ("\n•", "\n-", "\n*", "\n1.", "\n2.", ";", "||"):
                if sep in text and (found := [c for c in map(_clean_claim, text.split(sep)) if len(c) > 3]):
                    return found
            items = text.split("\n")
    out = [_clean_claim(c.get("claim", "") if isinstance(c, dict) else str(c)) for c in items]
    return [c for c in out if len(c) > 3]


def parse_row(row: dict[str, Any]) -> Task:
    """One task row, validated; a RowError names what is wrong."""
    missing = [c for c in REQUIRED_COLUMNS if row.get(c) is None]
    if missing:
        raise RowError(f"truncated row: no {', '.join(missing)}")
    if row.get(None):  # csv: more fields than the header names (a broken quote)
        raise RowError(f"{len(row[None])} fields more than the header names")
    prompt = str(row["PROMPT"]).strip()
    if not prompt:
        raise RowError("empty PROMPT")
    tools, specs = _parse_tools(row["ENABLED_TOOLS"])
    trajectory = _parse_trajectory(row["TRAJECTORY"])
    claims = parse_claims(row["GTFA_CLAIMS"])
    if not claims:
        raise RowError("GTFA_CLAIMS holds no claims (the benchmark gives such a row no coverage score)")
    return Task(str(row["TASK"]).strip(), prompt, tools, trajectory, claims, specs)


def read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    csv.field_size_limit(1 << 30)
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_rows(path: Path) -> tuple[list[Task], list[SkippedRow]]:
    """(valid tasks, malformed rows with their reasons), in file order."""
    tasks, skipped, seen = [], [], set()
    for n, row in enumerate(read_rows(path), start=1):
        task_id = str(row.get("TASK") or "").strip() or f"row {n}"
        try:
            if task_id in seen:
                raise RowError("duplicate TASK id")
            task = parse_row(row)
            if not task.id:
                raise RowError("empty TASK id")
        except RowError as e:
            skipped.append(SkippedRow(task_id, str(e)))
            continue
        seen.add(task.id)
        tasks.append(task)
    return tasks, skipped


def load_tasks(path: Path) -> list[Task]:
    """The valid tasks of a task file (`load_rows` also says which rows were skipped and why)."""
    return load_rows(path)[0]


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
                                f"envfactory benchmarks fetch mcp_atlas {root} --sha256 HEX)")
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
    """Recorded outputs of gold calls, keyed by (tool, normalized arguments); a task's own recording first.
    Also every recorded call's arguments per tool (for inferred schemas) and the schemas rows publish."""

    def __init__(self, tasks: list[Task]):
        self._book: dict[tuple[str, str], list[tuple[str, Any]]] = {}
        self.arg_samples: dict[str, list[dict]] = {}
        self.published: dict[str, dict] = {}
        for t in tasks:
            self.published.update(t.tool_specs)
            for c in t.gold_calls():
                if isinstance(c.arguments, dict):
                    self.arg_samples.setdefault(c.name, []).append(c.arguments)
            for tool, args, content in t.recorded_outputs():
                self._book.setdefault((tool, canonical_args(args)), []).append((t.id, content))

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


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "string"


def infer_value_schema(values: list[Any]) -> dict:
    """The JSON schema of values seen for one parameter: their JSON type(s); array items and object properties
    inferred from every element seen (an object's `required`: the keys every one of them has)."""
    kinds = {_json_kind(v) for v in values}
    if {"integer", "number"} <= kinds:
        kinds.discard("integer")
    schemas = []
    for kind in sorted(kinds):
        if kind == "array":
            items = [x for v in values if isinstance(v, list) for x in v]
            schemas.append({"type": "array", **({"items": infer_value_schema(items)} if items else {})})
        elif kind == "object":
            schemas.append(infer_input_schema([v for v in values if isinstance(v, dict)]))
        else:
            schemas.append({"type": kind})
    if len(schemas) == 1:
        return schemas[0]
    if all(set(s) == {"type"} for s in schemas):
        return {"type": [s["type"] for s in schemas]}
    return {"anyOf": schemas}


def infer_input_schema(samples: list[dict]) -> dict:
    """An object schema from recorded argument objects: every key seen (in first-seen order) with its
    inferred type; required = the keys present in every sample."""
    keys = list(dict.fromkeys(k for s in samples for k in s))
    schema: dict[str, Any] = {"type": "object",
                              "properties": {k: infer_value_schema([s[k] for s in samples if k in s]) for k in keys}}
    required = [k for k in keys if all(k in s for s in samples)]
    if required:
        schema["required"] = required
    return schema


TOOL_LIST_FILE = "tool_schemas.json"  # beside the task file: the servers' published tool list, saved by the user
SCHEMA_SOURCES = ("published", "inferred", "none")


def load_tool_list(path: Path) -> dict[str, dict]:
    """A published tool list, by offered name: {name: {"description", "input_schema"}}. Accepts the reply of the
    MCP-Atlas environment's `POST /list-tools` (a JSON list of MCP tools: `name`, `description`, `inputSchema`,
    named `<server>_<tool>`), an MCP `tools/list` result (`{"tools": [...]}`), or such a mapping itself
    ({name: {"description", "input_schema" | "inputSchema"}}). Anything else is a ValueError naming the entry."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("tools"), list):
        data = data["tools"]
    if isinstance(data, dict):
        entries = [(k, v) for k, v in data.items()]
    elif isinstance(data, list):
        entries = [(t.get("name") if isinstance(t, dict) else None, t) for t in data]
    else:
        raise ValueError(f"{path}: a {_kind(data)}, not a list of tools (the reply of POST /list-tools) "
                         "or a mapping of tool names to schemas")
    tools: dict[str, dict] = {}
    for i, (name, t) in enumerate(entries):
        if not isinstance(name, str) or not name.strip() or not isinstance(t, dict):
            raise ValueError(f"{path}: entry {i} is not a tool with a name")
        schema = next((t[k] for k in ("inputSchema", "input_schema", "parameters") if k in t), None)
        if not isinstance(schema, dict):
            raise ValueError(f"{path}: tool {name!r} has no input schema object")
        tools[gold_tool_name(name.strip())] = {"description": str(t.get("description") or ""), "input_schema": schema}
    return tools


def tool_list_for(tasks_file: Path) -> dict[str, dict]:
    """The published tool list saved beside a task file (`TOOL_LIST_FILE`), or {} when there is none."""
    path = tasks_file.parent / TOOL_LIST_FILE
    return load_tool_list(path) if path.is_file() else {}


def schema_source(name: str, book: ReplayBook, overrides: dict[str, dict]) -> str:
    """Where a replayed tool's input schema comes from: `published` (the tool list, then the rows' ENABLED_TOOLS),
    `inferred` (recorded calls of it with arguments), or `none` (offered without parameters)."""
    if overrides.get(name) or book.published.get(name):
        return "published"
    return "inferred" if any(book.arg_samples.get(name, [])) else "none"


def replay_tool_schema(name: str, book: ReplayBook, overrides: dict[str, dict]) -> dict:
    """OpenAI tool for a replayed tool: the published schema when one is known (`tool_schemas.json`, then the
    rows' ENABLED_TOOLS), else one inferred from every recorded call of the tool across the task set."""
    server, _, short = name.partition("_")
    published = overrides.get(name) or book.published.get(name)
    if published:
        return _openai_tool(name, published.get("description") or f"Tool `{short}` of the `{server}` MCP server.",
                            published.get("input_schema") or published.get("inputSchema") or {})
    return _openai_tool(name, f"Tool `{short}` of the `{server}` MCP server.",
                        infer_input_schema(book.arg_samples.get(name, [])))


def _openai_tool(name: str, description: str, schema: dict) -> dict:
    return {"type": "function", "function": {"name": name, "description": description or "",
                                             "parameters": schema or {"type": "object", "properties": {}}}}


def has_parameters(tool: dict) -> bool:
    return bool((tool["function"].get("parameters") or {}).get("properties"))


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
    """Local MCP servers for one run, on a run directory whose `/data` and memory are reset per task.

    A server that does not start is recorded in `down` (with the error) instead of ending the run: its tools
    stay offered and every call to them answers a `server_unavailable` error (counted as a local tool error)."""

    def __init__(self, run_dir: Path, files: Path, memory_seed: Path, call_timeout_s: float = 120.0):
        from .mcp_servers.client import MCPServers, server_params  # the mcp client: imported when a run needs it

        self.run_dir, self.files, self.memory_seed = run_dir, files, memory_seed
        self.data, self.memory = run_dir / "data", run_dir / "memory.jsonl"
        self.down: dict[str, str] = {}
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

    def start(self, names: list[str]) -> None:
        try:
            self.servers.start(names)
        except Exception:  # noqa: BLE001 - which one failed is found below, server by server
            pass
        for name in names:
            self.local_tools(name)

    def close(self) -> None:
        self.servers.close()

    def session(self, server: str):
        from .mcp_servers.client import ServerSession

        return ServerSession(self.servers, server)

    def local_tools(self, server: str) -> dict[str, Any]:
        if server in self.down:
            return {}
        try:
            return {t.name: t for t in self.servers.tools(server)}
        except Exception as e:  # noqa: BLE001 - a server that cannot start is reported, not fatal
            self.down[server] = f"{type(e).__name__}: {e}"
            return {}


@dataclass
class Offer:
    tools: list[dict] = field(default_factory=list)
    routes: dict[str, tuple[str, str]] = field(default_factory=dict)
    replayed: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # replayed tool -> where its schema came from


def offer_tools(task: Task, harness: Harness, book: ReplayBook, overrides: dict[str, dict]) -> Offer:
    """Route each enabled tool to its local server when that server serves it (or is down: its calls then
    fail as they would), else to replay."""
    offer = Offer()
    for name in task.enabled_tools:
        server, _, short = name.partition("_")
        local = harness.local_tools(server) if server in LOCAL_SERVERS else {}
        if short in local:
            t = local[short]
            offer.tools.append(_openai_tool(name, t.description or "", dict(t.input_schema)))
            offer.routes[name] = (server, short)
        elif server in harness.down:
            offer.tools.append(replay_tool_schema(name, book, overrides))
            offer.routes[name] = (server, short)
        else:
            offer.tools.append(replay_tool_schema(name, book, overrides))
            offer.routes[name] = ("replay", name)
            offer.replayed.append(name)
            offer.sources[name] = schema_source(name, book, overrides)
    return offer


# -------------------------------------------------------------------------------------------- judge
#
# The judge prompt, the response schema and the scale below are MCP-Atlas's own, reproduced from
# services/scoring/score_claims.py (CoverageEvaluator._get_single_claim_evaluation_prompt,
# get_single_claim_evaluation_schema) of https://github.com/scaleapi/mcp-atlas at
# 5b6220c64d55072d4ab6c028fa4aba063da9901b, under its licence:
#
#   MIT License
#
#   Copyright (c) 2026 Scale
#
#   Permission is hereby granted, free of charge, to any person obtaining a copy
#   of this software and associated documentation files (the "Software"), to deal
#   in the Software without restriction, including without limitation the rights
#   to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
#   copies of the Software, and to permit persons to whom the Software is
#   furnished to do so, subject to the following conditions:
#
#   The above copyright notice and this permission notice shall be included in all
#   copies or substantial portions of the Software.
#
#   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
#   IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
#   FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
#   AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
#   LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
#   OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
#   SOFTWARE.

JUDGE_PROMPT = """You are evaluating how well a model's response addresses a specific expert-defined claim.
SCORING CRITERIA:
- fulfilled: Claim is completely and accurately addressed. The response covers all key details.
- partially_fulfilled: Claim is partially addressed. The response covers some but not all key details.
- not_fulfilled: Claim is not addressed. The response does not include any key details.
NUMERICAL COMPARISON GUIDELINES:
- For numerical values, use reasonable approximation thresholds:
  * Exact match NOT required for decimals
  * Values within 5% of the claimed number are considered matching
  * For percentages, ±1 percentage points is acceptable
  * Round to appropriate significant figures based on context
- Consider the precision appropriate to the domain:
  * Scientific measurements may need higher precision
  * General statistics/estimates can have looser matching
  * Financial figures should match to reasonable business precision (e.g., millions/billions don't need exact cents)
- If a number is expressed differently but mathematically equivalent (e.g., "0.5" vs "50%" vs "half"), consider it a match
CLAIM TO EVALUATE:
{claim}
MODEL RESPONSE TO ANALYZE:
{response}
INSTRUCTIONS:
1. Determine if the core requirement of the claim is met in the response
2. Check if all key components from the claim appear substantively in the response
   - For numerical values, apply the flexible matching guidelines above
   - Focus on whether the same magnitude and meaning are conveyed
3. Assign the appropriate coverage_outcome
4. Provide specific justification referencing what was/wasn't covered
   - When numbers differ slightly, note if they're within acceptable range
5. Provide a confidence level (0.0-1.0) for your assessment
Be rigorous but fair in your assessment. Focus on whether the response conveys the same information as the claim, not on exact numerical precision unless precision is critical to the claim's meaning."""  # noqa: E501 - the benchmark's prompt, verbatim
CLAIM_SCHEMA = {
    "type": "object",
    "properties": {"claim_text": {"type": "string"},
                   "coverage_outcome": {"type": "string", "enum": list(VERDICT_SCORES)},
                   "justification": {"type": "string"},
                   "confidence_level": {"type": "number"}},
    "required": ["claim_text", "coverage_outcome", "justification", "confidence_level"],
}


def judge_prompt(claim: str, response: str) -> str:
    return JUDGE_PROMPT.format(claim=claim, response=response)


def _parse_json_object(text: str) -> dict:
    text = text.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    start, end = text.find("{"), text.rfind("}")
    obj = json.loads(text[start:end + 1])
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


def judge_claim(client: LLMClient, task: Task, index: int, claim: str, response: str) -> dict:
    """One claim, one judge call (the benchmark's prompt, temperature 0, its JSON schema). An unknown outcome
    scores 0 as in the benchmark; a failed call or an unparseable reply is `not_fulfilled` with `error` set."""
    req = ChatRequest(model=client.cfg.model, temperature=0.0, max_tokens=1024, json_schema=CLAIM_SCHEMA,
                      messages=[Message(role="user", content=judge_prompt(claim, response))],
                      metadata={"step": "judge", "benchmark": NAME, "task": task.id, "claim_index": index})
    try:
        reply = _parse_json_object(client.chat(req).content)
        outcome = str(reply.get("coverage_outcome", "not_fulfilled"))
        confidence = float(reply.get("confidence_level", 0.5))
        justification = str(reply.get("justification", ""))
    except Exception as e:  # noqa: BLE001 - the benchmark scores a claim it could not judge as not fulfilled
        return {"claim": claim, "outcome": "not_fulfilled", "score": 0.0, "confidence": 0.1,
                "justification": f"Evaluation failed: {type(e).__name__}: {e}", "error": True}
    return {"claim": claim, "outcome": outcome, "score": VERDICT_SCORES.get(outcome, 0.0), "confidence": confidence,
            "justification": justification, "error": False}


def judge_coverage(client: LLMClient, task: Task, answer: str) -> tuple[float, list[dict]]:
    """(coverage, per-claim verdicts): each claim judged on its own; coverage = mean claim score, rounded to 3
    places. An empty (or `ERROR:`) answer scores 0 without a judge call; an over-long one is cut as the
    benchmark cuts it."""
    if not answer.strip() or answer.startswith("ERROR:"):
        return 0.0, [{"claim": c, "outcome": "not_fulfilled", "score": 0.0, "confidence": 1.0,
                      "justification": "Empty or error response", "error": False} for c in task.claims]
    if len(answer) > MAX_RESPONSE_CHARS:
        answer = answer[:MAX_RESPONSE_CHARS] + "\n\n[TRUNCATED — original response was too long]"
    verdicts = [judge_claim(client, task, i, c, answer) for i, c in enumerate(task.claims)]
    return round(sum(v["score"] for v in verdicts) / len(verdicts), 3), verdicts


# ------------------------------------------------------------------------------------------ policies

def _tool_text(content: str) -> str:
    """The text of one tool message as the agent received it (a result dict, JSON-dumped, maybe cut)."""
    try:
        result = json.loads(content)
    except ValueError:  # cut at MAX_TOOL_CHARS: keep the readable part
        return content.replace("\\n", "\n").replace('\\"', '"')
    if not isinstance(result, dict):
        return str(result)
    if isinstance(result.get("error"), dict):
        return f"error ({result['error'].get('kind', '')}): {result['error'].get('message', '')}"
    text = _text(result.get("content"))
    return f"error: {text}" if result.get("isError") else text


def oracle_answer(messages: list[Message]) -> str:
    """An answer written only from the tool results in the conversation: each result's text under the tool's
    name, errors included as received. No tool result -> no answer."""
    names = {c.id: c.name for m in messages if m.role == "assistant" for c in m.tool_calls}
    parts = [f"[{names.get(m.tool_call_id or '', 'tool')}]\n{_tool_text(m.content)}"
             for m in messages if m.role == "tool"]
    return ("What the tools returned:\n\n" + "\n\n".join(parts)) if parts else ""


def oracle_policy(task: Task):
    """Replays the gold trajectory's calls through the harness, then answers from the outputs it received
    (`oracle_answer`), never from the gold claims: a tool that fails lowers its score."""
    turns = [calls for _, calls in task.gold_turns()]

    def act(messages: list[Message], tools: list[dict]) -> Message:
        i = sum(1 for m in messages if m.role == "assistant")
        if i < len(turns):
            return Message(role="assistant", content="", tool_calls=turns[i])
        return Message(role="assistant", content=oracle_answer(messages))

    return act


def final_answer(messages: list[Message]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "assistant" and m.content.strip()), "")


def call_counts(ep, routes: dict[str, tuple[str, str]], replay: ReplaySession) -> dict[str, int]:
    """Per episode: tool calls, those run on local servers, local calls that failed (an error or isError result),
    calls of tools never offered, calls whose arguments were not a JSON object, replay hits and misses."""
    asked = [c for m in ep.messages if m.role == "assistant" for c in m.tool_calls]
    local = [c for c in ep.calls if c.env != "replay"]
    return {"tool_calls": len(asked), "local_calls": len(local),
            "local_tool_errors": sum(bool("error" in c.result or c.result.get("isError")) for c in local),
            "unknown_tools": sum(isinstance(c.arguments, dict) and c.name not in routes for c in asked),
            "format_errors": ep.format_errors, "replay_hits": replay.hits, "replay_misses": replay.misses}


# --------------------------------------------------------------------------------------------- run

COUNTS = ("tool_calls", "local_calls", "local_tool_errors", "unknown_tools", "format_errors", "replay_hits",
          "replay_misses")


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
            all_tasks, skipped = load_rows(tasks_file)
            overrides = tool_list_for(tasks_file)  # the published tool list, when the user saved one
        except (OSError, ValueError, csv.Error) as e:
            return unavailable(NAME, self.version, spec.name, f"{type(e).__name__}: {e}")
        if skipped and ctx.strict:
            raise MalformedRows(str(tasks_file), skipped)
        if not all_tasks:
            return unavailable(NAME, self.version, spec.name, f"no valid task in {tasks_file.name}: "
                               + "; ".join(map(str, skipped)))
        tasks = all_tasks[:ctx.limit] if ctx.limit else all_tasks
        book = ReplayBook(all_tasks)  # every recording of the set may answer a matching call
        judge = LLMClient(ctx.judge, cache_dir=ctx.cache_dir, cache_mode="use" if ctx.cache_dir else "off")
        idle = idle_policy() if spec.kind == "idle" else None

        t0 = time.time()
        out_dir = Path(ctx.work_dir) / NAME
        out_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=out_dir))
        harness = Harness(run_dir, files, memory_seed)
        stats = dict.fromkeys(COUNTS, 0) | {"judge_errors": 0}
        passes, passes_half, coverages, per_task_trials, replayed_any = [], [], [], [], False
        sources: dict[str, str] = {}  # replayed tool -> where its input schema came from (SCHEMA_SOURCES)
        try:
            harness.start(sorted({n.partition("_")[0] for t in tasks for n in t.enabled_tools} & set(LOCAL_SERVERS)))
            with open(out_dir / "episodes.jsonl", "w", encoding="utf-8") as log:
                for task in tasks:
                    offer = offer_tools(task, harness, book, overrides)
                    replayed_any |= bool(offer.replayed)
                    sources |= offer.sources
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
                        coverage, verdicts = judge_coverage(judge, task, answer)
                        counts = call_counts(ep, offer.routes, replay)
                        for k, v in counts.items():
                            stats[k] += v
                        stats["judge_errors"] += sum(v["error"] for v in verdicts)
                        trial_cov.append(coverage)
                        log.write(json.dumps({"task": task.id, "trial": trial, "coverage": coverage,
                                              "passed": coverage >= PASS_THRESHOLD, "claims": verdicts,
                                              "counts": counts, "answer": answer, "stopped_by": ep.stopped_by,
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
                   **{k: float(v) for k, v in stats.items()}, "skipped_rows": float(len(skipped)),
                   "replay_tools": float(len(sources)),
                   "replay_tools_published_schema": float(sum(v == "published" for v in sources.values())),
                   "replay_tools_inferred_schema": float(sum(v == "inferred" for v in sources.values())),
                   "replay_tools_without_parameters": float(sum(v == "none" for v in sources.values()))}
        pass_k = ({str(k): pass_hat_k(per_task_trials, k) for k in range(1, ctx.num_trials + 1)}
                  if ctx.num_trials > 1 else {})
        category = CategoryScore(category="default", score=score, n=len(tasks), stderr=stderr, pass_k=pass_k,
                                 metrics=metrics, label="replay-based" if replayed_any else "")
        notes = []
        if skipped:
            notes.append(f"skipped {len(skipped)} malformed rows: " + "; ".join(map(str, skipped)))
        if replayed_any:
            notes.append(f"tools needing the internet replayed recorded outputs ({stats['replay_hits']} matched, "
                         f"{stats['replay_misses']} unmatched calls answered 'unavailable offline')")
        if harness.down:
            notes.append("local MCP servers down (their calls failed): "
                         + "; ".join(f"{k}: {v}" for k, v in sorted(harness.down.items())))
        failed = {k: stats[k] for k in ("local_tool_errors", "unknown_tools", "format_errors") if stats[k]}
        if failed:
            notes.append("failed calls: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in failed.items()))
        if sources:
            counts = {k: sum(v == k for v in sources.values()) for k in SCHEMA_SOURCES}
            notes.append(f"input schemas of the {len(sources)} replayed tools: {counts['published']} published, "
                         f"{counts['inferred']} inferred from recorded calls, {counts['none']} without parameters "
                         "(no published schema and no recorded call with arguments)"
                         + ("" if (tasks_file.parent / TOOL_LIST_FILE).is_file() else
                            f"; no published tool list: save the MCP-Atlas environment's POST /list-tools reply "
                            f"as {TOOL_LIST_FILE} beside {tasks_file.name}"))
        if stats["judge_errors"]:
            notes.append(f"{stats['judge_errors']} claims the judge could not score (counted not fulfilled)")
        return BenchmarkResult(benchmark=NAME, status="scored", reason="; ".join(notes), policy=spec.name,
                               categories=[category], adapter_version=self.version,
                               data_version=f"{tasks_file.name}:{len(all_tasks) + len(skipped)}",
                               data_checksum=_data_checksum(tasks_file, files, memory_seed),
                               judge_model=ctx.judge.model,
                               wall_s=time.time() - t0)


def _data_checksum(tasks_file: Path, files: Path, memory_seed: Path) -> str:
    """The task file, the files tasks read, the memory seed and the published tool list (the schemas offered): all
    of them decide the scores."""
    parts = [dir_checksum(p) for p in (tasks_file, files, memory_seed, tasks_file.parent / TOOL_LIST_FILE)
             if p.exists()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()

