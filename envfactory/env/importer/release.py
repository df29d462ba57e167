"""`envfactory envs import-release`: import every environment of the paper's public release.

Input: a clone (or unpacked archive) of the release, i.e. a folder with `envs/metadata/<Name>_metadata.json`,
`envs/tools/<Name>.py` and `envs/intermediate/<Name>_checkpoint.json` (the `envs/` folder itself also works).
Output folder:

    import_report.json        per environment: status, cause, one-line message, case counts, fixes, hazards
    <env>/                    verified environments: ordinary EnvFactory packages (spec.json, env.py,
                              paper_env.py = the released module unchanged, scenarios/, tests.json, import.json)
    rejected/<env>/           imported but not admitted (load-only, nondeterministic, live HTTP, ...)
    .import/<Name>.json       per-environment record keyed by the content hash of its inputs (resume cache)

`envs.extra_dirs: [<output folder>]` admits the verified ones into an experiment.

Statuses: `verified` (admitted), `imported` (a package was written but is not admitted; `cause` says why),
`rejected` (nothing could be imported; `cause` says why). Every environment is independent: a broken one is
reported and the others import. The paper's code never runs in this process: it is read with `ast` here
and executed only in sandbox workers (`validate.py`, `envfactory.env.verify`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import pprint
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, Field

from ...catalog import catalog_packages
from ...io import atomic_write_json, atomic_write_text
from ..cases import CaseSet
from ..package import EnvPackage
from ..sandbox import SandboxedEnv, SandboxError, SandboxLimits
from ..spec import EnvSpec, ToolSpec
from ..verify import cached_verify
from .static import ModuleInfo, analyze_module, json_type_of, snake
from .validate import Exploration, explore

IMPORTER_VERSION = "1"  # part of every input key: bump when the generated packages or checks change
REPORT_FILE = "import_report.json"
REJECTED_DIR = "rejected"
STATE_DIR = ".import"
STAGING_DIR = ".staging"


class ImportProblem(Exception):
    """An environment that cannot be imported: a cause category and a one-line message naming the defect."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause, self.message = cause, message


class ReleaseError(Exception):
    """The path is not a release at all (nothing to import)."""


class CaseCounts(BaseModel):
    total: int = 0
    passed: int = 0
    load: int = 0
    load_failed: int = 0
    rejection: int = 0
    rejection_failed: int = 0
    tool_calls: int = 0
    determinism: int = 0


class EnvRecord(BaseModel):
    name: str = Field(description="the release's name (file stem)")
    package: str | None = Field(None, description="the EnvFactory environment name (spec.json `name`)")
    status: Literal["verified", "imported", "rejected"]
    cause: str = Field("ok", description="`ok` or the defect's category")
    message: str = Field("", description="one line naming the defect (or what was verified)")
    path: str | None = Field(None, description="package folder, relative to the import folder")
    key: str = Field("", description="content hash of the inputs (metadata, module, checkpoint, importer)")
    tools: int = 0
    tool_names: list[str] = Field(default_factory=list, description="the metadata's tool names (also when the "
                                                                       "environment could not be imported)")
    tools_untested: list[str] = Field(default_factory=list)
    scenarios: int = 0
    cases: CaseCounts = Field(default_factory=CaseCounts)
    fixes: list[str] = Field(default_factory=list, description="what the importer adapted, and why")
    hazards: list[str] = Field(default_factory=list, description="determinism / offline hazards found and how "
                                                                  "they are handled")
    problems: list[str] = Field(default_factory=list, description="every failure, in detail")
    seconds: float = 0.0

    def summary(self) -> str:
        c = self.cases
        counts = f"{self.tools} tools, {c.passed}/{c.total} cases ({c.tool_calls} tool calls)" if c.total else ""
        text = f"{self.name:28s} {self.status:9s}"
        if self.status == "verified":
            return f"{text} {counts}" + (f"; {len(self.fixes)} fixes" if self.fixes else "")
        return f"{text} {self.cause}: {self.message}" + (f" [{counts}]" if counts else "")


class ImportReport(BaseModel):
    release: str
    importer_version: str = IMPORTER_VERSION
    envs: list[EnvRecord]
    counts: dict[str, int]
    causes: dict[str, int]
    tools_verified: int = 0
    selected: list[str] = Field(default_factory=list, description="the environments this run covered (--only)")
    seconds: float = 0.0
    load_average: list[float] = Field(default_factory=list, description="1/5/15-min load when the run ended")


# ------------------------------------------------------------------ reading the release

def find_envs_dir(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise ReleaseError(f"no such path: {path}")
    for candidate in (path / "envs", path):
        if (candidate / "metadata").is_dir():
            return candidate
    raise ReleaseError(f"{path} is not the paper's release: no envs/metadata/ folder (clone "
                       "https://github.com/LARK-AI-Lab/EnvFactory and pass its folder)")


def release_names(envs: Path) -> list[str]:
    names = {p.name[: -len("_metadata.json")] for p in (envs / "metadata").glob("*_metadata.json")}
    names |= {p.stem for p in (envs / "tools").glob("*.py") if not p.name.startswith("_")} \
        if (envs / "tools").is_dir() else set()
    return sorted(names)


def _paths(envs: Path, name: str) -> dict[str, Path]:
    return {"metadata": envs / "metadata" / f"{name}_metadata.json", "module": envs / "tools" / f"{name}.py",
            "checkpoint": envs / "intermediate" / f"{name}_checkpoint.json"}


def input_key(envs: Path, name: str) -> str:
    h = hashlib.sha256(f"envfactory-import-release:{IMPORTER_VERSION}:{name}\0".encode())
    for kind, p in _paths(envs, name).items():
        h.update(kind.encode() + b"\0" + (p.read_bytes() if p.is_file() else b"<missing>") + b"\0")
    return h.hexdigest()


def _read_json(path: Path, what: str) -> Any:
    rel = "/".join(path.parts[-2:])
    if not path.is_file():
        raise ImportProblem(f"missing_{what}", f"no {what} file {rel}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ImportProblem("corrupt_json", f"{rel} is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ImportProblem("corrupt_json", f"{rel} is not valid JSON: {exc.msg} at line {exc.lineno} "
                                            f"column {exc.colno}") from None


@dataclass
class Plan:
    """Everything the package is made of, decided statically."""
    name: str
    package: str
    spec: EnvSpec
    binding: dict
    module_source: str
    scenarios: dict[str, dict]
    rejected_scenarios: dict[str, dict]
    info: ModuleInfo
    descriptions: dict[str, str] = field(default_factory=dict)  # scenario id -> the checkpoint's description
    fixes: list[str] = field(default_factory=list)
    hazards: list[str] = field(default_factory=list)
    blockers: list[tuple[str, str]] = field(default_factory=list)  # (cause, message): not admissible
    problems: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


def _scenario_file_id(raw: Any, index: int, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(raw or f"scenario_{index + 1:03d}")).strip("._") or f"s{index}"
    sid, n = base, 2
    while sid in taken:
        sid, n = f"{base}_{n}", n + 1
    taken.add(sid)
    return sid


def plan_env(envs: Path, name: str, taken_names: set[str]) -> Plan:
    paths = _paths(envs, name)
    meta = _read_json(paths["metadata"], "metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("tools"), list) or not meta["tools"]:
        raise ImportProblem("bad_metadata", f"metadata/{paths['metadata'].name} has no tools[] list")
    if not paths["module"].is_file():
        raise ImportProblem("missing_module", f"no module tools/{name}.py (the metadata names {len(meta['tools'])} "
                                              "tools but their code is not in the release)")
    try:
        source = paths["module"].read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ImportProblem("module_load_error", f"tools/{name}.py is not UTF-8 text ({exc.reason})") from None
    try:
        info = analyze_module(source, f"{name}.py")
    except SyntaxError as exc:
        raise ImportProblem("syntax_error", f"tools/{name}.py line {exc.lineno}: {exc.msg}") from None
    if not info.state_class:
        raise ImportProblem("no_state_class", f"tools/{name}.py defines no class with load_scenario() and "
                                              "save_scenario()")
    checkpoint = _read_json(paths["checkpoint"], "checkpoint")
    raw = checkpoint.get("scenarios") if isinstance(checkpoint, dict) else None
    if not isinstance(raw, list) or not raw:
        raise ImportProblem("no_scenarios", f"intermediate/{paths['checkpoint'].name} has no scenarios[] "
                                            "(nothing to load the environment from)")
    scenarios, rejected, taken, problems, descriptions = {}, {}, set(), [], {}
    for i, s in enumerate(raw):
        data = s.get("scenario_data") if isinstance(s, dict) else None
        sid = _scenario_file_id(s.get("scenario_id") if isinstance(s, dict) else None, i, taken)
        if isinstance(s, dict) and isinstance(s.get("description"), str):
            descriptions[sid] = " ".join(s["description"].split())
        if not isinstance(data, dict):
            problems.append(f"scenario {sid}: scenario_data is not an object; skipped")
            continue
        (rejected if s.get("expected_behavior") == "validation_error" else scenarios)[sid] = data
    fixes: list[str] = []
    _fill_clock_fields(info, checkpoint, scenarios, rejected, fixes)
    if not scenarios:
        raise ImportProblem("no_scenarios", f"intermediate/{paths['checkpoint'].name} has no scenario expected to "
                                            f"load ({len(rejected)} validation_error scenario(s) only)")

    package = snake(name)
    if package in taken_names:
        package = f"{package}_paper"
    if meta.get("class_name") != info.state_class:
        fixes.append(f"state class is {info.state_class} (found by load_scenario/save_scenario), not the "
                     f"metadata's class_name {meta.get('class_name')!r}")
    tools, binding_tools = [], {}
    for t in meta["tools"]:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            problems.append("a metadata tool has no name; skipped")
            continue
        tool_name = t["name"]
        sig = info.functions.get(tool_name)
        how: dict[str, Any] = {"function": tool_name if sig else None, "method": None, "params": {}}
        if sig is None:
            sig = info.methods.get(tool_name)
            if sig is None:
                problems.append(f"tool {tool_name}: neither an @mcp.tool() function nor a method of "
                                f"{info.state_class}; left out")
                fixes.append(f"{tool_name} left out: no code implements it")
                continue
            how["method"] = tool_name
            fixes.append(f"{tool_name} has no @mcp.tool() function: the method {info.state_class}.{tool_name} "
                         "is called on the module's instance")
        schema = json.loads(json.dumps(t.get("input_schema") or {"type": "object", "properties": {}}))
        schema.setdefault("type", "object")
        props = schema.setdefault("properties", {})
        required = list(schema.get("required") or [])
        for prop in list(props):
            if prop in sig.params or sig.has_kwargs:
                continue
            target = snake(prop)
            if target in sig.params:
                how["params"][prop] = target
                fixes.append(f"{tool_name}: metadata parameter {prop} is the function's {target}")
            else:
                how["params"][prop] = None
        mapped = {how["params"].get(p) or p: p for p in props}
        for param in sig.required:
            prop = mapped.get(param)
            if prop is None:
                props[param] = {**json_type_of(sig.annotations.get(param)),
                                "description": f"{param} (required by the code; missing from the metadata)"}
                prop = param
                fixes.append(f"{tool_name}: parameter {param} required by the code is added to the schema")
            if prop not in required:
                required.append(prop)
                fixes.append(f"{tool_name}: {prop} is required by the code, optional in the metadata")
        schema["required"] = required
        tools.append(ToolSpec(name=tool_name, description=t.get("description") or tool_name, input_schema=schema,
                              output_schema=t.get("output_schema") or {}))
        binding_tools[tool_name] = how
    if not tools:
        raise ImportProblem("no_tools", f"none of the metadata's tools exists in tools/{name}.py")
    extra = sorted(set(info.functions) - {t.name for t in tools} - {"load_scenario", "save_scenario"})
    if extra:
        problems.append(f"@mcp.tool() functions without metadata (not offered): {', '.join(extra)}")
    class_name = meta.get("class_name") if str(meta.get("class_name", "")).isidentifier() else info.state_class
    spec = EnvSpec(name=package, domain=str(meta.get("domain") or "imported"),
                   description=str(meta.get("description") or ""), class_name=class_name, tools=tools)
    hazards, blockers = [], []
    for h in info.hazards:
        if h.fixed_by:
            hazards.append(f"{h.describe()}: {h.fixed_by}")
        else:
            hazards.append(f"{h.describe()}: the sandbox has no network")
            blockers.append(("network", f"live HTTP: calls {h.detail} (line {h.line} of tools/{name}.py); the "
                                        "sandbox is offline, so its answers cannot be reproduced"))
    if "random" in info.hazard_kinds() and info.seeds_random:
        hazards.append("the module seeds random itself in load_scenario (kept)")
    binding = {"module": "paper_env.py", "name": package, "domain": spec.domain, "class_name": class_name,
               "state_class": info.state_class, "pin_clock": "clock" in info.hazard_kinds(), "tools": binding_tools}
    sources = {kind: hashlib.sha256(p.read_bytes()).hexdigest() for kind, p in paths.items() if p.is_file()}
    return Plan(name=name, package=package, spec=spec, binding=binding, module_source=source, scenarios=scenarios,
                rejected_scenarios=rejected, info=info, descriptions=descriptions, fixes=fixes, hazards=hazards,
                blockers=blockers, problems=problems, sources=sources)


CLOCK_FIELDS = ("current_time", "current_datetime", "current_date", "now", "today")
_CLOCK_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%f",
                  "%Y-%m-%d", "%H:%M:%S", "%H:%M")
FALLBACK_INSTANT = datetime.datetime(2025, 1, 1, 12, 0, 0)


def _fill_clock_fields(info: ModuleInfo, checkpoint: dict, scenarios: dict, rejected: dict, fixes: list) -> None:
    """The shipped modules replaced wall-clock reads by a required scenario field (`current_time`) after the
    checkpoint's scenarios were written. Where a scenario lacks such a field, set it to the instant the paper's
    validation ran the code that still read the clock (the checkpoint's `last_updated`): same semantics."""
    wanted = [f for n, f in info.scenario_fields.items() if n in CLOCK_FIELDS and f.required]
    if not wanted:
        return
    meta = checkpoint.get("metadata") if isinstance(checkpoint.get("metadata"), dict) else {}
    try:
        instant = datetime.datetime.fromisoformat(str(meta.get("last_updated"))).replace(microsecond=0, tzinfo=None)
        origin = "the checkpoint's last_updated, when the paper's validation ran the code"
    except ValueError:
        instant, origin = FALLBACK_INSTANT, "a fixed instant (the checkpoint has no last_updated)"
    for f in wanted:
        value = next((v for v in (instant.strftime(fmt) for fmt in _CLOCK_FORMATS)
                      if f.pattern is None or _pattern_ok(f.pattern, v)), None)
        missing = [sid for group in (scenarios, rejected) for sid, data in group.items() if f.name not in data]
        if value is None or not missing:
            continue
        for group in (scenarios, rejected):
            for sid in missing:
                if sid in group:
                    group[sid][f.name] = value
        fixes.append(f"{len(missing)} scenario(s) predate the module's required {f.name} field (it replaced "
                     f"wall-clock reads): set to {value}, {origin}")


def _pattern_ok(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


_ENV_TEMPLATE = '''"""{name} from the paper's public release, imported by `envfactory envs import-release`.

The tools are the released module's own @mcp.tool() functions (paper_env.py, unchanged), called against its
module-global {state_class} instance inside the sandbox worker; see envfactory/env/adapter.py.
Generated file: re-run the import instead of editing it.
"""
from envfactory.env.adapter import paper_module_env

BINDING = {binding}

{class_name} = paper_module_env(__file__, BINDING)
'''


def write_package(plan: Plan, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "paper_env.py", plan.module_source)
    atomic_write_text(root / "env.py", _ENV_TEMPLATE.format(
        name=plan.name, state_class=plan.info.state_class, class_name=plan.spec.class_name,
        binding=pprint.pformat(plan.binding, indent=1, width=110, sort_dicts=True)))
    atomic_write_json(root / "spec.json", plan.spec.model_dump(mode="json"))
    for sid, data in plan.scenarios.items():
        atomic_write_json(root / "scenarios" / f"{sid}.json", data)


# ------------------------------------------------------------------ one environment

def _verdict(plan: Plan, ex: Exploration, record: EnvRecord) -> None:
    """Status, cause and message from the exploration (before the final verification)."""
    problems = record.problems
    for sid, msg in ex.load_failures.items():
        problems.append(f"scenario {sid} does not load: {msg}")
    for sid, msg in ex.rejection_results.items():
        if msg:
            problems.append(f"validation_error scenario {sid} {msg}")
    crashed = []
    for tool, outcome in ex.tools.items():
        for c in outcome.unexpected[:1]:
            crashed.append(tool)
            problems.append(f"{tool}({_args_text(c.args)}) from {c.scenario}: {c.result['error']['kind']}: "
                            f"{c.result['error']['message'][:200]}")
        if outcome.unbuildable:
            problems.append(f"{tool}: no schema-valid call could be built from any scenario's values")
        elif outcome.kept is None and not outcome.unexpected:
            problems.append(f"{tool}: no call returned a result or a domain error")
    if ex.determinism_problem:
        problems.append(f"determinism: {ex.determinism_problem}")
    record.tools_untested = sorted(t for t, o in ex.tools.items() if not o.passed)
    counts = record.cases
    counts.load, counts.load_failed = len(ex.loaded), len(ex.load_failures)
    counts.rejection = len(ex.rejection_results)
    counts.rejection_failed = sum(1 for m in ex.rejection_results.values() if m)
    counts.tool_calls = ex.tool_cases
    counts.determinism = sum(1 for c in ex.cases if c.name.startswith("determinism"))

    def fail(cause: str, message: str) -> None:
        record.status, record.cause, record.message = "imported", cause, message

    network_calls = [c for o in ex.tools.values() for c in o.unexpected if c.kind == "sandbox_violation"]
    if plan.blockers:
        fail(*plan.blockers[0])
    elif not ex.loaded:
        sid, msg = next(iter(ex.load_failures.items()))
        fail("scenario_load_error", f"none of its {len(ex.load_failures)} scenarios loads; {sid}: {msg}")
    elif network_calls:
        c = network_calls[0]
        fail("network", f"{c.tool} tried {c.result['error']['message'][:160]} in the offline sandbox")
    elif crashed:
        tool = crashed[0]
        c = ex.tools[tool].unexpected[0]
        more = f" (and {len(crashed) - 1} more tools)" if len(crashed) > 1 else ""
        fail("tool_exception", f"{tool} crashed on a schema-valid call from {c.scenario}: "
                               f"{c.result['error']['message'][:200]}{more}")
    elif ex.determinism_problem:
        fail("nondeterministic", ex.determinism_problem)
    elif ex.tool_cases == 0:
        untested = record.tools_untested
        fail("load_only", f"only its scenarios load: no tool call could be executed ({len(untested)} tools "
                          f"without a schema-valid call from the scenarios' values)")
    elif record.tools_untested:
        fail("untested_tools", f"no schema-valid call of {', '.join(record.tools_untested[:4])}"
                               f"{' ...' if len(record.tools_untested) > 4 else ''} could be built from the "
                               "scenarios' values, so they are unverified")
    elif ex.tool_cases < 3:
        fail("load_only", f"only {ex.tool_cases} tool-call case(s) could be executed (3 needed)")
    elif any(ex.load_failures.values()):
        sid, msg = next(iter(ex.load_failures.items()))
        fail("scenario_load_error", f"scenario {sid} of the checkpoint does not load: {msg}")
    elif counts.rejection_failed:
        sid = next(s for s, m in ex.rejection_results.items() if m)
        what = plan.descriptions.get(sid)
        fail("accepts_invalid_scenario", f"its validation_error scenario {sid}"
                                         + (f" ({what[:120]})" if what else "") + " loads without an error")
    else:
        record.status, record.cause = "verified", "ok"


def _args_text(args: dict) -> str:
    text = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in args.items())
    return text if len(text) <= 100 else text[:97] + "..."


def import_one(envs: Path, name: str, out: Path, limits: SandboxLimits, taken_names: set[str]) -> EnvRecord:
    t0 = time.perf_counter()
    key = input_key(envs, name)
    record = EnvRecord(name=name, status="rejected", key=key)
    staging = None
    try:
        meta = json.loads(_paths(envs, name)["metadata"].read_text(encoding="utf-8"))
        record.tool_names = [t["name"] for t in meta["tools"] if isinstance(t.get("name"), str)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # plan_env reports what is wrong with the metadata
    try:
        plan = plan_env(envs, name, taken_names)
        record.package, record.tools = plan.package, len(plan.spec.tools)
        record.fixes, record.hazards, record.problems = plan.fixes, plan.hazards, list(plan.problems)
        staging = Path(tempfile.mkdtemp(prefix=f"{plan.package}.", dir=_ensure(out / STAGING_DIR)))
        write_package(plan, staging)
        try:
            with SandboxedEnv(staging, limits) as env:
                ex = explore(env, plan.spec, plan.scenarios, plan.rejected_scenarios)
        except SandboxError as exc:
            message = _worker_message(str(exc))
            if plan.blockers:  # e.g. the HTTP client it needs is not even installed here
                cause, blocker = plan.blockers[0]
                raise ImportProblem(cause, f"{blocker} (and its import fails: {message[:120]})") from None
            raise ImportProblem("module_load_error", message) from None
        record.scenarios = len(ex.loaded)
        # the package keeps the scenarios that load
        for sid in ex.load_failures:
            (staging / "scenarios" / f"{sid}.json").unlink(missing_ok=True)
        if not ex.loaded:  # keep one (failing) scenario so that the folder is still a package to inspect
            sid = next(iter(plan.scenarios))
            atomic_write_json(staging / "scenarios" / f"{sid}.json", plan.scenarios[sid])
        atomic_write_json(staging / "tests.json",
                          CaseSet(cases=ex.cases).model_dump(mode="json", exclude_defaults=True))
        if ex.output_schemas:  # outputs disagree with the metadata's output_schema: relaxed to what the code returns
            plan.spec = plan.spec.model_copy(update={"tools": [
                t.model_copy(update={"output_schema": ex.output_schemas.get(t.name, t.output_schema)})
                for t in plan.spec.tools]})
            atomic_write_json(staging / "spec.json", plan.spec.model_dump(mode="json"))
            plan.fixes.extend(ex.schema_fixes)
        _verdict(plan, ex, record)
        report = None
        if record.status == "verified":  # the standard verification, in a fresh worker (cross-process determinism)
            report = cached_verify(EnvPackage(staging), limits)
            if not report.verified:
                first = report.problems[0] if report.problems else "verification failed"
                record.problems += report.problems
                cause = "nondeterministic" if "state hash" in first or "expected" in first else "verify_failed"
                record.status, record.cause = "imported", cause
                record.message = f"a fresh worker disagrees with the first: {first[:240]}" \
                    if cause == "nondeterministic" else first[:300]
        c = record.cases  # every checkpoint scenario, every tool and the determinism check is a case
        failed_in_verify = 0 if report is None or report.verified else max(1, sum(not r.passed for r in report.cases))
        c.total = (len(ex.cases) + c.load_failed + c.rejection + len(record.tools_untested)
                   + (1 if ex.determinism_problem else 0))
        c.passed = len(ex.cases) + c.rejection - c.rejection_failed - failed_in_verify
        if record.status == "verified":
            record.message = (f"{len(ex.loaded)} scenario(s) load, {record.cases.rejection} invalid one(s) refused, "
                              f"{record.cases.tool_calls} tool calls pass, the same calls twice reach the same state")
        if record.status != "verified":
            _mark_not_admitted(staging, ex, record)
        atomic_write_json(staging / "import.json", {
            "release_name": name, "importer_version": IMPORTER_VERSION, "inputs_sha256": plan.sources,
            "status": record.status, "cause": record.cause, "fixes": plan.fixes, "hazards": plan.hazards,
            "validation_error_scenarios": sorted(plan.rejected_scenarios)})
        dest_rel = plan.package if record.status == "verified" else f"{REJECTED_DIR}/{plan.package}"
        _place(staging, out, name, out / dest_rel)
        staging = None
        record.path = dest_rel
    except ImportProblem as problem:
        record.status, record.cause, record.message = "rejected", problem.cause, problem.message
        record.problems.append(problem.message)
        _remove_previous(out, name)
    except Exception as exc:  # noqa: BLE001 - one environment never stops the others
        record.status, record.cause = "rejected", "importer_error"
        record.message = f"the importer failed on it: {type(exc).__name__}: {' '.join(str(exc).split())[:240]}"
        record.problems.append(record.message)
        _remove_previous(out, name)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    record.seconds = round(time.perf_counter() - t0, 2)
    return record


def _mark_not_admitted(root: Path, ex: Exploration, record: EnvRecord) -> None:
    """A package set aside under rejected/ must not verify if someone points extra_dirs at it: a case that
    always fails, named after the reason (some defects, such as an invalid scenario that loads, cannot be
    written as a case)."""
    tests = json.loads((root / "tests.json").read_text())
    sid = (ex.loaded or sorted(p.stem for p in (root / "scenarios").glob("*.json")))[0]
    tests["cases"].append({"name": f"not admitted by import-release: {record.cause}: {record.message}"[:400],
                           "scenario": sid, "steps": [{"tool": "__not_admitted__", "args": {}}]})
    atomic_write_json(root / "tests.json", tests)


def _worker_message(text: str) -> str:
    text = text.split("\n--- worker log ---")[0]
    text = text.split("worker failed to start: ", 1)[-1]
    text = re.sub(r"^loading \S+ failed: ", "", text)
    text = re.sub(r"^import raised ImportError: ", "", text)
    return " ".join(text.split())[:300]


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _remove_previous(out: Path, name: str) -> None:
    """Remove what an earlier import of this release environment left (whatever its status was then)."""
    for folder in (out, out / REJECTED_DIR):
        for p in folder.iterdir() if folder.is_dir() else []:
            marker = p / "import.json"
            if marker.is_file():
                try:
                    origin = json.loads(marker.read_text()).get("release_name")
                except ValueError:
                    continue
                if origin == name:
                    shutil.rmtree(p, ignore_errors=True)


def _place(staging: Path, out: Path, name: str, dest: Path) -> None:
    """Move a finished package to its place (rename: atomic), replacing what an earlier import left."""
    _remove_previous(out, name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(dest)


# ------------------------------------------------------------------ the whole release

def import_release(path: str | Path, out: str | Path, only: list[str] | None = None,
                   limits: SandboxLimits | None = None, jobs: int | None = None,
                   log: Callable[[str], None] = print) -> ImportReport:
    t0 = time.perf_counter()
    envs = find_envs_dir(Path(path))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    limits = limits or SandboxLimits()
    names = release_names(envs)
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ReleaseError(f"not in the release: {', '.join(unknown)} (it has {len(names)} environments, "
                               f"e.g. {', '.join(names[:5])})")
    selected = [n for n in names if not only or n in only]
    taken = {p.name for p in catalog_packages()}
    state = out / STATE_DIR
    records: dict[str, EnvRecord] = {}
    todo = []
    for name in selected:
        cached = _cached_record(state / f"{name}.json", envs, name, out)
        if cached is not None:
            records[name] = cached
            log(cached.summary() + "  (unchanged, not redone)")
        else:
            todo.append(name)
    lock = threading.Lock()

    def work(name: str) -> None:
        record = import_one(envs, name, out, limits, taken)
        atomic_write_json(state / f"{name}.json", record.model_dump(mode="json"))
        with lock:
            records[name] = record
            log(record.summary())

    jobs = jobs or min(4, os.cpu_count() or 1)
    if todo:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(work, todo))
    shutil.rmtree(out / STAGING_DIR, ignore_errors=True)
    # the report covers every environment with a current record (earlier --only runs included)
    for name in names:
        if name not in records:
            cached = _cached_record(state / f"{name}.json", envs, name, out)
            if cached is not None:
                records[name] = cached
    ordered = [records[n] for n in names if n in records]
    counts = {s: sum(r.status == s for r in ordered) for s in ("verified", "imported", "rejected")}
    causes: dict[str, int] = {}
    for r in ordered:
        if r.status != "verified":
            causes[r.cause] = causes.get(r.cause, 0) + 1
    report = ImportReport(release=str(envs.resolve()), envs=ordered, counts={"environments": len(ordered), **counts},
                          causes=dict(sorted(causes.items())),
                          tools_verified=sum(r.tools for r in ordered if r.status == "verified"),
                          selected=selected,
                          seconds=round(time.perf_counter() - t0, 1),
                          load_average=[round(x, 2) for x in os.getloadavg()])
    atomic_write_json(out / REPORT_FILE, report.model_dump(mode="json"))
    return report


def _cached_record(path: Path, envs: Path, name: str, out: Path) -> EnvRecord | None:
    if not path.is_file():
        return None
    try:
        record = EnvRecord.model_validate_json(path.read_text())
    except ValueError:
        return None
    if record.key != input_key(envs, name):
        return None
    if record.path and not (out / record.path / "spec.json").is_file():
        return None
    return record
