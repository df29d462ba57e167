"""Contamination audit: do the training environments leak benchmark tools or data, or vice versa?

For every admitted training environment (a manifest's packages: their `spec.json` tools and
`scenarios/*.json` data) and every benchmark backend (MCP-Atlas, VitaBench, BFCL-v3, tau2), reports:

- `tool_name_overlaps`: a training tool whose name equals a benchmark tool's name, case-insensitively
  (MCP-Atlas tools compared by their full `<server>_<tool>` name, as the model sees them).
- `normalized_name_overlaps`: names equal after normalization: camelCase/kebab/dotted split to snake_case,
  lower-cased, a benchmark tool's server prefix (MCP-Atlas `<server>_`) or module/class prefix (BFCL
  `math.`, `GorillaFileSystem.`) stripped. A superset of the exact overlaps.
- `same_signature_overlaps`: a training tool and a benchmark tool with the identical set of parameter names
  (names normalized the same way), at least 2 of them: the same call shape under any name.
- `shared_values`: string values (>= 8 characters after whitespace collapsing and case folding; purely
  numeric or date/time-like strings excluded) that occur both as a value in some training scenario and as a
  value anywhere in the benchmark's data (tasks, databases, recorded outputs, gold answers; JSON embedded in a
  string is parsed and searched too). Whole values are compared, not substrings of free text.
  Listed longest first (longer values are more specific), capped at `MAX_SHARED_VALUES`;
  `shared_values_total` has the full count.

- `mirrors`: environments that re-implement a benchmark *backend* (a BFCL-v3 multi-turn API class, a tau2
  domain, an MCP-Atlas server, a VitaBench domain): at least `MIRROR_MIN_TOOLS` tool names shared (normalized)
  and an overlap coefficient shared / min(env tools, backend tools) >= `MIRROR_MIN_OVERLAP`. Besides the
  admitted environments, the candidates an experiment was offered but did not admit are checked too: the
  environments of every `import_report.json` in `envs.extra_dirs` (`--config`), with their metadata's tool
  names (`admitted: false`), so a release that ships benchmark mirrors is flagged even where they fail to verify.

Benchmarks whose data lives in an isolated venv (BFCL-v3, tau2) are read from that venv's site-packages
(read only, never imported, never built from here): no venv -> `checked: false`, reason "venv not built".

    envfactory contamination results/default/envs/manifest.json --out results/default/contamination.json \
        [--config results/default/config.json]
"""

from __future__ import annotations

import ast
import csv
import importlib
import itertools
import json
import re
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from envfactory.env.manifest import admitted_packages
from envfactory.io import atomic_write_text

from .isolated import venv_dir
from .registry import contamination_loaders

REPORT_VERSION = 1
MIN_VALUE_LEN = 8
MAX_SHARED_VALUES = 50
MIN_SIGNATURE_PARAMS = 2
MIRROR_MIN_TOOLS = 3
MIRROR_MIN_OVERLAP = 0.25
VENV_MISSING = "venv not built"


# ------------------------------------------------------------------------------------------------ report

class NameOverlap(BaseModel):
    train_env: str
    train_tool: str
    bench_tool: str
    bench_source: str = Field(description="where the benchmark tool is declared (file, server, domain)")
    key: str = Field(description="the (normalized) name both sides share")


class SignatureOverlap(BaseModel):
    train_env: str
    train_tool: str
    bench_tool: str
    bench_source: str
    params: list[str] = Field(description="the shared parameter-name set (normalized)")


class SharedValue(BaseModel):
    value: str = Field(description="the value as written in the first training scenario holding it")
    train_envs: list[str]
    bench_sources: list[str]


class Mirror(BaseModel):
    env: str
    admitted: bool = Field(description="in the manifest (trained on), or only offered: a candidate from an import "
                                       "report that was not admitted")
    backend: str = Field(description="the benchmark backend it re-implements")
    shared_tools: list[str] = Field(description="normalized tool names both have")
    env_tools: int
    backend_tools: int
    overlap: float = Field(description="shared / min(env_tools, backend_tools)")


class BenchmarkContamination(BaseModel):
    benchmark: str
    checked: bool
    reason: str = ""
    data_paths: list[str] = Field(default_factory=list, description="where the benchmark side was read from")
    tool_name_overlaps: list[NameOverlap] = Field(default_factory=list)
    normalized_name_overlaps: list[NameOverlap] = Field(default_factory=list)
    same_signature_overlaps: list[SignatureOverlap] = Field(default_factory=list)
    shared_values: list[SharedValue] = Field(default_factory=list)
    shared_values_total: int = 0
    mirrors: list[Mirror] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


class ContaminationReport(BaseModel):
    version: int = REPORT_VERSION
    manifest: str
    envs: list[str]
    train_tools: int
    train_values: int = Field(description="distinct candidate string values in the training scenarios")
    candidates: list[str] = Field(default_factory=list, description="offered but not admitted environments "
                                                                   "checked for mirrors (from import reports)")
    benchmarks: dict[str, BenchmarkContamination]

    def summary(self) -> str:
        lines = [f"{len(self.envs)} envs, {self.train_tools} tools, {self.train_values} candidate values"]
        for b in self.benchmarks.values():
            if not b.checked:
                lines.append(f"{b.benchmark:10s} not checked: {b.reason}")
                continue
            lines.append(f"{b.benchmark:10s} tools={b.counts.get('bench_tools', 0)} "
                         f"exact={len(b.tool_name_overlaps)} normalized={len(b.normalized_name_overlaps)} "
                         f"signature={len(b.same_signature_overlaps)} shared_values={b.shared_values_total} "
                         f"mirrors={len(b.mirrors)}")
            for m in b.mirrors:
                lines.append(f"  mirror: {m.env} ~ {m.backend} ({len(m.shared_tools)} shared tools, overlap "
                             f"{m.overlap:.2f}{'' if m.admitted else ', not admitted'})")
        return "\n".join(lines)


def write_report(report: ContaminationReport, out: Path) -> Path:
    return atomic_write_text(out, report.model_dump_json(indent=1) + "\n")


# ------------------------------------------------------------------------------------- benchmark sides

class BenchmarkUnavailable(Exception):
    """The benchmark's data cannot be read here; the message is the report's reason."""

    def __init__(self, reason: str, paths: Iterable[str] = ()):
        super().__init__(reason)
        self.reason, self.paths = reason, list(paths)


@dataclass(frozen=True)
class BenchTool:
    name: str  # as the model sees it
    params: tuple[str, ...]
    source: str
    short: str = ""  # the name without server/module prefix; defaults to the name
    backend: str = ""  # the stateful backend (API class, domain, server) it belongs to; "" for loose function docs


@dataclass
class BenchData:
    """A benchmark's tools and data. `docs` yields (source label, JSON-like document); it may be lazy."""
    tools: list[BenchTool] = field(default_factory=list)
    docs: Iterable[tuple[str, Any]] = ()
    paths: list[str] = field(default_factory=list)


def _params(schema: Any) -> tuple[str, ...]:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return tuple(props) if isinstance(props, dict) else ()


def load_mcp_atlas(data_dir: Path | None = None) -> BenchData:
    """ENABLED_TOOLS of every task (local-server schemas, else the schema MCP-Atlas infers for replay), every
    tool of the project's local MCP servers, and the tasks (prompts, trajectories, claims), files and memory."""
    from unittest.mock import MagicMock

    from .mcp_atlas import ReplayBook, load_tasks, replay_tool_schema, resolve_data, tool_list_for
    from .mcp_servers import LOCAL_SERVERS

    tasks_file, files, memory_seed = resolve_data(data_dir)
    tasks = load_tasks(tasks_file)
    local: dict[str, tuple[str, ...]] = {}
    for server, module in LOCAL_SERVERS.items():
        mod = importlib.import_module(module)
        # `tools(backend)` only reads the backend for descriptions and handlers: a stub lists the same schemas.
        defs = mod.TOOLS if hasattr(mod, "TOOLS") else mod.tools(MagicMock())
        for t in defs:
            local[f"{server}_{t.name}"] = _params(t.input_schema)
    overrides = tool_list_for(tasks_file)  # the published tool list, when one is saved beside the tasks
    book = ReplayBook(tasks)
    tools = [BenchTool(n, p, f"mcp_servers/{n.partition('_')[0]}", n.partition("_")[2],
                       f"mcp_atlas/{n.partition('_')[0]}") for n, p in local.items()]
    for name in sorted({n for t in tasks for n in t.enabled_tools} - set(local)):
        schema = replay_tool_schema(name, book, overrides)["function"]["parameters"]
        tools.append(BenchTool(name, _params(schema), "enabled_tools(replayed)", name.partition("_")[2],
                               f"mcp_atlas/{name.partition('_')[0]}"))

    def docs() -> Iterator[tuple[str, Any]]:
        for t in tasks:
            yield tasks_file.name, [t.prompt, t.trajectory, t.claims]
        for p in sorted(files.rglob("*.csv")) if files.is_dir() else []:
            with open(p, newline="", encoding="utf-8", errors="replace") as f:
                yield f"files/{p.name}", list(csv.reader(f))
        if memory_seed.is_file():
            yield f"memory/{memory_seed.name}", _json_or_lines(memory_seed.read_text())

    return BenchData(tools, docs(), [str(tasks_file), str(files), str(memory_seed)])


def load_vitabench() -> BenchData:
    from .vitabench import CATEGORIES, DATA_DIR, TOOLS

    tools = [BenchTool(t["function"]["name"], _params(t["function"]["parameters"]), f"vitabench/{domain}",
                       backend=f"vitabench/{domain}") for domain, defs in TOOLS.items() for t in defs]
    files = [DATA_DIR / c / "tasks_en.json" for c in CATEGORIES]

    def docs() -> Iterator[tuple[str, Any]]:
        for p in files:
            if p.is_file():
                yield f"{p.parent.name}/{p.name}", json.loads(p.read_text())

    return BenchData(tools, docs(), [str(p) for p in files])


def site_packages(name: str) -> Path:
    """site-packages of a built isolated venv; BenchmarkUnavailable("venv not built") otherwise. Never builds."""
    root = venv_dir(name)
    if not (root / ".ready").is_file():
        raise BenchmarkUnavailable(VENV_MISSING, [str(root)])
    found = sorted(root.glob("lib/python*/site-packages"))
    if not found:
        raise BenchmarkUnavailable(f"no site-packages in {root}", [str(root)])
    return found[0]


def _jsonl(path: Path) -> Any:
    return _json_or_lines(path.read_text(encoding="utf-8"))


def _json_or_lines(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_bfcl() -> BenchData:
    """Function docs of every BFCL-v3 question file and the multi-turn API docs; questions, multi-turn initial
    states and possible answers as data."""
    data = site_packages("bfcl") / "bfcl_eval" / "data"
    if not data.is_dir():
        raise BenchmarkUnavailable(f"no bfcl_eval/data in {data.parent.parent}", [str(data)])
    questions = sorted(data.glob("BFCL_v3_*.json"))
    func_docs = sorted((data / "multi_turn_func_doc").glob("*.json"))
    answers = sorted((data / "possible_answer").glob("BFCL_v3_*.json"))
    loaded = {p: _jsonl(p) for p in questions + func_docs}
    tools: list[BenchTool] = []

    def add(fn: Any, source: str, backend: str = "") -> None:
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            tools.append(BenchTool(fn["name"], _params(fn.get("parameters")), source,
                                   fn["name"].rsplit(".", 1)[-1], backend))

    for p in questions:  # single-turn questions: loose function docs of many APIs, no backend
        for entry in loaded[p]:
            for fn in entry.get("function") or [] if isinstance(entry, dict) else []:
                add(fn, p.name)
    for p in func_docs:  # multi-turn: one stateful API class per file
        for fn in loaded[p]:
            add(fn, f"multi_turn_func_doc/{p.name}", f"bfcl/{p.stem}")

    def docs() -> Iterator[tuple[str, Any]]:
        for p in questions:
            yield p.name, loaded.pop(p)
        for p in func_docs:
            yield f"multi_turn_func_doc/{p.name}", loaded.pop(p)
        for p in answers:
            yield f"possible_answer/{p.name}", _jsonl(p)

    return BenchData(tools, docs(), [str(data)])


def _is_tool_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (isinstance(target, ast.Name) and target.id == "is_tool") or \
        (isinstance(target, ast.Attribute) and target.attr == "is_tool")


def tau2_tools(source: str, label: str, backend: str = "") -> list[BenchTool]:
    """`@is_tool`-decorated methods of a tau2 toolkit module, read statically (the package is never imported)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(map(_is_tool_decorator,
                                                                                 node.decorator_list)):
            args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            out.append(BenchTool(node.name, tuple(a.arg for a in args if a.arg not in ("self", "cls")), label,
                                 backend=backend))
    return out


def load_tau2() -> BenchData:
    from .tau2 import DOMAINS

    pkg = site_packages("tau2") / "tau2"
    if not pkg.is_dir():
        raise BenchmarkUnavailable(f"no tau2 package in {pkg.parent}", [str(pkg)])
    data = pkg / "data" / "tau2" / "domains"
    tools = []
    for domain in DOMAINS:
        for p in sorted((pkg / "domains" / domain).glob("*tools.py")):
            tools += tau2_tools(p.read_text(encoding="utf-8"), f"tau2/{domain}/{p.name}", f"tau2/{domain}")
    files = [p for d in DOMAINS for p in (data / d / n for n in ("tasks.json", "db.json", "db.toml", "user_db.toml"))
             if p.is_file()]

    def docs() -> Iterator[tuple[str, Any]]:
        for p in files:
            label = f"{p.parent.name}/{p.name}"
            yield label, tomllib.loads(p.read_text()) if p.suffix == ".toml" else json.loads(p.read_text())

    return BenchData(tools, docs(), [str(pkg / "domains"), str(data)])




# --------------------------------------------------------------------------------------- normalization

_CAMEL1, _CAMEL2 = re.compile(r"([A-Z]+)([A-Z][a-z])"), re.compile(r"([a-z0-9])([A-Z])")
_SPLIT = re.compile(r"[^0-9a-z]+")
_NUMERIC_LIKE = re.compile(r"[\d\W_tz]+")  # digits, separators, ISO 'T'/'Z': numbers, dates, times, phones
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_WORD_DATE = re.compile(rf"(?:[a-z]+,?\s+)?(?:\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}|{_MONTHS}\s+\d{{1,2}}"
                        rf"(?:st|nd|rd|th)?)(?:,?\s+\d{{2,4}})?(?:[\s,t]+[\d:\s.apm]*)?")


def normalize_name(name: str) -> str:
    """`getHotelDetails`, `get-hotel-details`, `Hotels.get_hotel_details` -> `get_hotel_details`."""
    s = name.rsplit(".", 1)[-1]
    s = _CAMEL2.sub(r"\1_\2", _CAMEL1.sub(r"\1_\2", s)).lower()
    return "_".join(t for t in _SPLIT.split(s) if t)


def normalize_value(s: str) -> str:
    return " ".join(s.split()).casefold()


def is_numeric_like(norm: str) -> bool:
    """Purely numeric or date/time-like (a normalized value): not evidence of shared content."""
    return bool(_NUMERIC_LIKE.fullmatch(norm) or _WORD_DATE.fullmatch(norm))


def iter_strings(doc: Any) -> Iterator[str]:
    """Every string value (not dict key) in a JSON-like document; strings holding JSON are searched too."""
    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            if len(x) > 1 and x[0] in "{[" and x[-1] in "}]":
                try:
                    stack.append(json.loads(x))
                    continue
                except ValueError:
                    pass
            yield x
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)


# ------------------------------------------------------------------------------------------------ audit

@dataclass(frozen=True)
class _TrainTool:
    env: str
    name: str
    params: frozenset[str]


def _train_side(manifest_path: Path) -> tuple[list[str], list[_TrainTool], dict[str, tuple[str, set[str]]]]:
    packages = admitted_packages(manifest_path)
    tools, values = [], {}
    for env in sorted(packages):
        pkg = packages[env]
        for t in pkg.spec.tools:
            tools.append(_TrainTool(env, t.name, frozenset(map(normalize_name, _params(t.input_schema)))))
        for sid in pkg.scenario_ids():
            for s in iter_strings(pkg.scenario(sid)):
                if len(s) < MIN_VALUE_LEN:
                    continue
                norm = normalize_value(s)
                if len(norm) >= MIN_VALUE_LEN and not is_numeric_like(norm):
                    values.setdefault(norm, (s, set()))[1].add(env)
    return sorted(packages), tools, values


@dataclass(frozen=True)
class _EnvTools:
    env: str
    tools: frozenset[str]  # normalized tool names
    admitted: bool


def release_candidates(dirs: Iterable[str | Path], admitted: set[str]) -> list[_EnvTools]:
    """Environments listed in the `import_report.json` of each folder (an `envfactory envs import-release`
    output) that are not admitted: their metadata's tool names, whatever their import status."""
    out, seen = [], set(admitted)
    for d in dirs:
        path = Path(d) / "import_report.json"
        if not path.is_file():
            continue
        try:
            envs = json.loads(path.read_text()).get("envs") or []
        except ValueError:
            continue
        for e in envs:
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                continue
            name = e.get("package") or normalize_name(e["name"])
            tools = frozenset(normalize_name(t) for t in e.get("tool_names") or [] if isinstance(t, str))
            if name not in seen and tools:
                seen.add(name)
                out.append(_EnvTools(name, tools, admitted=False))
    return out


def find_mirrors(bench_tools: Iterable[BenchTool], envs: Iterable[_EnvTools]) -> list[Mirror]:
    """(environment, backend) pairs sharing >= MIRROR_MIN_TOOLS normalized tool names with an overlap
    coefficient >= MIRROR_MIN_OVERLAP: the environment re-implements that benchmark backend."""
    backends: dict[str, set[str]] = {}
    for t in bench_tools:
        if t.backend:
            backends.setdefault(t.backend, set()).add(normalize_name(t.short or t.name))
    out = []
    for e in envs:
        for backend, names in sorted(backends.items()):
            shared = e.tools & names
            if len(shared) < MIRROR_MIN_TOOLS:
                continue
            overlap = len(shared) / min(len(e.tools), len(names))
            if overlap >= MIRROR_MIN_OVERLAP:
                out.append(Mirror(env=e.env, admitted=e.admitted, backend=backend, shared_tools=sorted(shared),
                                  env_tools=len(e.tools), backend_tools=len(names), overlap=round(overlap, 3)))
    return sorted(out, key=lambda m: (-m.overlap, m.env))


def _audit(name: str, bench: BenchData, train_tools: list[_TrainTool],
           train_values: dict[str, tuple[str, set[str]]], candidates: list[_EnvTools] = ()) -> BenchmarkContamination:
    seen, tools = set(), []
    for t in bench.tools:  # first declaration wins: sources are read in a fixed order
        key = (t.name, frozenset(map(normalize_name, t.params)))
        if key not in seen:
            seen.add(key)
            tools.append(t)
    by_exact: dict[str, list[BenchTool]] = {}
    by_norm: dict[str, list[BenchTool]] = {}
    by_sig: dict[frozenset[str], list[BenchTool]] = {}
    for t in tools:
        by_exact.setdefault(t.name.casefold(), []).append(t)
        for k in {normalize_name(t.name), normalize_name(t.short or t.name)} - {""}:
            by_norm.setdefault(k, []).append(t)
        sig = frozenset(map(normalize_name, t.params))
        if len(sig) >= MIN_SIGNATURE_PARAMS:
            by_sig.setdefault(sig, []).append(t)

    def pairs(index: dict, key, make) -> list:
        out, done = [], set()
        for tt in train_tools:
            k = key(tt)
            for bt in index.get(k, []) if k is not None else []:
                if (tt.env, tt.name, bt.name) not in done:
                    done.add((tt.env, tt.name, bt.name))
                    out.append(make(tt, bt, k))
        return out

    exact = pairs(by_exact, lambda tt: tt.name.casefold(),
                  lambda tt, bt, k: NameOverlap(train_env=tt.env, train_tool=tt.name, bench_tool=bt.name,
                                                bench_source=bt.source, key=k))
    norm = pairs(by_norm, lambda tt: normalize_name(tt.name),
                 lambda tt, bt, k: NameOverlap(train_env=tt.env, train_tool=tt.name, bench_tool=bt.name,
                                               bench_source=bt.source, key=k))
    sig = pairs(by_sig, lambda tt: tt.params if len(tt.params) >= MIN_SIGNATURE_PARAMS else None,
                lambda tt, bt, k: SignatureOverlap(train_env=tt.env, train_tool=tt.name, bench_tool=bt.name,
                                                   bench_source=bt.source, params=sorted(k)))

    # Values: dedupe raw strings per source first (benchmark databases repeat a lot), normalize the distinct ones.
    hits: dict[str, set[str]] = {}
    scanned: set[str] = set()
    for label, doc in bench.docs:
        raw = {s for s in iter_strings(doc) if len(s) >= MIN_VALUE_LEN}
        for s in raw:
            norm_s = normalize_value(s)
            scanned.add(norm_s)
            if norm_s in train_values:
                hits.setdefault(norm_s, set()).add(label)
    shared = [SharedValue(value=train_values[k][0], train_envs=sorted(train_values[k][1]),
                          bench_sources=sorted(hits[k])) for k in sorted(hits, key=lambda k: (-len(k), k))]
    by_env: dict[str, set[str]] = {}
    for tt in train_tools:
        by_env.setdefault(tt.env, set()).add(normalize_name(tt.name))
    mirrors = find_mirrors(tools, [_EnvTools(env, frozenset(names), True) for env, names in sorted(by_env.items())]
                           + list(candidates))
    counts = {"bench_tools": len(tools), "bench_strings_scanned": len(scanned), "tool_name_overlaps": len(exact),
              "normalized_name_overlaps": len(norm), "same_signature_overlaps": len(sig),
              "shared_values": len(shared),
              "train_tools_with_name_overlap": len({(o.train_env, o.train_tool) for o in norm}),
              "train_tools_with_signature_overlap": len({(o.train_env, o.train_tool) for o in sig}),
              "mirrors": len(mirrors), "mirrors_admitted": sum(m.admitted for m in mirrors)}
    return BenchmarkContamination(benchmark=name, checked=True, data_paths=bench.paths, tool_name_overlaps=exact,
                                  normalized_name_overlaps=norm, same_signature_overlaps=sig,
                                  shared_values=shared[:MAX_SHARED_VALUES], shared_values_total=len(shared),
                                  mirrors=mirrors, counts=counts)


def build_report(manifest_path: Path, loaders: Mapping[str, Callable[[], BenchData]] | None = None,
                 extra: Mapping[str, BenchData] | None = None,
                 offered_dirs: Iterable[str | Path] = ()) -> ContaminationReport:
    """Audit the manifest's admitted environments against each benchmark of `loaders` (default: all four).

    `extra` adds tools and data to a benchmark (or adds a benchmark): planted overlaps in tests, or data a
    loader does not know about (e.g. the full MCP-Atlas release: `{"mcp_atlas": load_mcp_atlas(dir)}`).
    `offered_dirs` (an experiment's `envs.extra_dirs`): import folders whose not-admitted environments are
    checked for mirrors too."""
    manifest_path = Path(manifest_path)
    loaders = dict(contamination_loaders() if loaders is None else loaders)
    extra = dict(extra or {})
    envs, train_tools, train_values = _train_side(manifest_path)
    candidates = release_candidates(offered_dirs, set(envs))
    results: dict[str, BenchmarkContamination] = {}
    for name in [*loaders, *(n for n in extra if n not in loaders)]:
        try:
            bench = loaders[name]() if name in loaders else BenchData()
        except BenchmarkUnavailable as e:
            if name not in extra:
                results[name] = BenchmarkContamination(benchmark=name, checked=False, reason=e.reason,
                                                       data_paths=e.paths)
                continue
            bench = BenchData(paths=e.paths)
        except (FileNotFoundError, ValueError) as e:
            results[name] = BenchmarkContamination(benchmark=name, checked=False, reason=f"{type(e).__name__}: {e}")
            continue
        if name in extra:
            more = extra[name]
            bench = BenchData([*bench.tools, *more.tools], itertools.chain(bench.docs, more.docs),
                              [*bench.paths, *more.paths])
        results[name] = _audit(name, bench, train_tools, train_values, candidates)
    return ContaminationReport(manifest=str(manifest_path), envs=envs, train_tools=len(train_tools),
                               train_values=len(train_values), candidates=[c.env for c in candidates],
                               benchmarks=results)


def run_audit(manifest: Path, out: Path | None = None, benchmarks: list[str] | None = None,
              config: Path | None = None, candidates: list[str] = ()) -> ContaminationReport:
    """`envfactory contamination`: audit a manifest, print the summary, write the report to `out`."""
    t0 = time.time()
    all_loaders = contamination_loaders()
    unknown = sorted(set(benchmarks or ()) - set(all_loaders))
    if unknown:
        raise ValueError(f"no contamination loader for {unknown}; have {sorted(all_loaders)}")
    loaders = {n: all_loaders[n] for n in benchmarks} if benchmarks else None
    offered = list(candidates)
    if config:
        from envfactory.config import load_config

        offered = [*load_config(config).envs.extra_dirs, *offered]
    report = build_report(manifest, loaders, offered_dirs=offered)
    if out:
        write_report(report, out)
    print(report.summary())
    print(f"({time.time() - t0:.1f}s)")
    return report
