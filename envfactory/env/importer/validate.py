"""Validation of an imported environment by executing it in sandbox workers.

Cases (all run in the sandbox, none in the driver):

* load: every `pass` scenario of the checkpoint loads;
* rejection: every `validation_error` scenario fails to load;
* tool calls: for every tool, schema-valid calls built from a scenario's own values (the sampler's
  `ValueSource` over `value_pools`, then the schema: defaults, enums, nested objects) until one returns a
  result; a domain error (the tool refusing) is accepted, an unexpected exception never is;
* determinism: a sequence of those calls from one scenario, run twice in one worker (after other calls)
  and again in a fresh worker by the final verification (`expect_hash` + recorded outputs).

`explore` runs the first three and the first half of determinism, and returns the cases to write into
`tests.json`; the package's standard verification (`envfactory.env.verify`) then re-runs them in a fresh
worker, which is also the cross-process determinism check.
"""

from __future__ import annotations

import ast
import json
import random
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from ...graph.build import ParamInfo, params_of
from ...graph.fields import _type_of, _unwrap, tokens, value_pools
from ...graph.sampler import FILLER, ValueSource
from ..cases import Case, Step
from ..sandbox import SandboxedEnv, SandboxError
from ..spec import EnvSpec, ToolSpec

ATTEMPTS_PER_TOOL = 8
MIN_TOOL_CASES = 3
MAX_EXPECTED_OUTPUT = 20_000  # characters of JSON; larger outputs are checked through the state hash only
DETERMINISM_STEPS = 8
UNEXPECTED = {"exception", "invalid_output", "timeout", "resource_limit", "sandbox_violation", "worker_crashed"}
_MISSING = object()


@dataclass
class CallRecord:
    tool: str
    scenario: str
    args: dict
    result: dict  # {"ok": ...} or {"error": {...}}

    @property
    def kind(self) -> str:
        return "ok" if "ok" in self.result else self.result["error"]["kind"]


@dataclass
class ToolOutcome:
    tool: str
    calls: list[CallRecord] = field(default_factory=list)
    unbuildable: bool = False  # no schema-valid call could be built from any scenario

    @property
    def kept(self) -> CallRecord | None:
        ok = [c for c in self.calls if c.kind == "ok"]
        refused = [c for c in self.calls if c.kind == "domain_error"]
        return (ok or refused or [None])[0]

    @property
    def unexpected(self) -> list[CallRecord]:
        return [c for c in self.calls if c.kind in UNEXPECTED]

    @property
    def passed(self) -> bool:
        return self.kept is not None and not self.unexpected


@dataclass
class Exploration:
    loaded: list[str] = field(default_factory=list)
    load_failures: dict[str, str] = field(default_factory=dict)
    rejection_results: dict[str, str | None] = field(default_factory=dict)  # id -> None (refused) or problem
    tools: dict[str, ToolOutcome] = field(default_factory=dict)
    determinism_problem: str | None = None
    cases: list[Case] = field(default_factory=list)
    output_schemas: dict[str, dict] = field(default_factory=dict)  # tool -> output_schema relaxed to the outputs
    schema_fixes: list[str] = field(default_factory=list)

    @property
    def tool_cases(self) -> int:
        return sum(1 for c in self.cases if c.name.startswith("tool "))


# ------------------------------------------------------------------ argument building

def _synth(schema: dict, name: str, values: ValueSource, rng: random.Random, depth: int = 0) -> Any:
    """A value for `schema` from the scenario's values where possible, else from the schema itself."""
    schema = _unwrap(schema or {})
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    t = _type_of(schema)
    if t in ("string", "integer", "number", "boolean") or (t == "array" and depth < 4):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        info = ParamInfo(name=name, type=t, required=True, description=schema.get("description", ""),
                         item_type=_type_of(_unwrap(items)) if items else None,
                         enum=(_unwrap(items).get("enum") if items else None))
        if t != "array" or info.item_type in ("string", "integer", "number"):
            ok, value = values.value(info, rng)
            if ok:
                return value
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    if depth > 4:
        return _MISSING
    if t == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        out = {}
        for key in props:
            if key not in required:
                continue
            value = _synth(props[key], key, values, rng, depth + 1)
            if value is _MISSING:
                return _MISSING
            out[key] = value
        return out
    if t == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        singular = name[:-1] if name.endswith("s") else name
        item = _synth(items, singular, values, rng, depth + 1)
        if item is _MISSING:
            return []
        return [item]
    if t == "string":
        # an identifier-like string: the scenario's values of a field named like it (players <- player) or
        # sharing its last word
        pool = _named_pool(values, name)
        return rng.choice(pool) if pool else rng.choice(FILLER)
    if t == "integer":
        return int(schema.get("minimum", 1) or 1)
    if t == "number":
        return float(schema.get("minimum", 10.0) or 10.0)
    if t == "boolean":
        return rng.random() < 0.5
    return _MISSING


def _named_pool(values: ValueSource, name: str) -> list[str]:
    """String values of the scenario field named like `name` (`players` for `player`), else of the fields whose
    last word is the name's last word."""
    last = tokens(name)[-1:] or [name]
    return [v for k, vs in values.pools.items() if _singular(k) == name for v in vs if isinstance(v, str)] or \
        [v for k, vs in values.pools.items() if tokens(_singular(k))[-1:] == last for v in vs if isinstance(v, str)]


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ses", "xes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def build_args(tool: ToolSpec, scenario: dict, rng: random.Random, optional: bool) -> dict | None:
    """Schema-valid arguments for `tool` from one scenario's values, or None."""
    values = ValueSource(value_pools(scenario))
    props = tool.input_schema.get("properties") or {}
    args: dict[str, Any] = {}
    for p in params_of(tool.input_schema):
        if not p.required and not (optional and rng.random() < 0.6):
            continue
        ok, value = False, None
        if p.type == "string" and not p.enum and values.pool_for(p) is None:
            named = _named_pool(values, p.name)  # players <- player: a container named for the parameter
            ok, value = (True, rng.choice(named)) if named else (False, None)
        if not ok and p.type not in ("object", "any"):
            ok, value = values.value(p, rng)
        if not ok:
            value = _synth(props.get(p.name, {}), p.name, values, rng)
            if value is _MISSING:
                if p.required:
                    return None
                continue
        args[p.name] = value
    validator = jsonschema.validators.validator_for(tool.input_schema, default=jsonschema.Draft202012Validator)
    if not validator(tool.input_schema).is_valid(args):
        # drop optional arguments that break the schema, then give up
        required = set(tool.input_schema.get("required") or [])
        args = {k: v for k, v in args.items() if k in required}
        if not validator(tool.input_schema).is_valid(args):
            return None
    return args


# ------------------------------------------------------------------ exploration in a worker

def _small(output: Any) -> bool:
    try:
        return len(json.dumps(output)) <= MAX_EXPECTED_OUTPUT
    except (TypeError, ValueError):
        return False


def _step(record: CallRecord) -> Step:
    if record.kind == "ok":
        out = record.result["ok"]
        return Step(tool=record.tool, args=record.args, expect_output=out if _small(out) and out is not None else None)
    return Step(tool=record.tool, args=record.args, expect_error=record.kind)


def explore(env: SandboxedEnv, spec: EnvSpec, scenarios: dict[str, dict], rejected: dict[str, dict],
            seed: int = 0) -> Exploration:
    ex = Exploration()
    for sid in scenarios:
        try:
            env.reset(sid)
            ex.loaded.append(sid)
        except SandboxError as exc:
            ex.load_failures[sid] = _reset_message(exc)
    for sid, data in rejected.items():
        try:
            env.reset(data)
            ex.rejection_results[sid] = "loads without error (expected a validation error)"
        except SandboxError:
            ex.rejection_results[sid] = None
    if not ex.loaded:
        return ex
    rng = random.Random(f"{spec.name}:{seed}")
    for tool in spec.tools:
        outcome = ToolOutcome(tool.name)
        ex.tools[tool.name] = outcome
        built = 0
        for attempt in range(ATTEMPTS_PER_TOOL * 3):
            if len(outcome.calls) >= ATTEMPTS_PER_TOOL or any(c.kind == "ok" for c in outcome.calls):
                break
            sid = ex.loaded[attempt % len(ex.loaded)]
            args = build_args(tool, scenarios[sid], rng, optional=attempt % 3 == 2)
            if args is None:
                continue
            built += 1
            env.reset(sid)
            outcome.calls.append(CallRecord(tool.name, sid, args, env.call(tool.name, args)))
        outcome.unbuildable = built == 0
    # cases: loads, one call per tool (more calls when there are fewer than MIN_TOOL_CASES tools)
    ex.cases = [Case(name=f"load {sid}", scenario=sid, steps=[]) for sid in ex.loaded]
    for tool in spec.tools:
        kept = ex.tools[tool.name].kept
        if kept is not None and ex.tools[tool.name].passed:
            ex.cases.append(Case(name=f"tool {tool.name} ({kept.scenario})", scenario=kept.scenario,
                                 steps=[_step(kept)]))
    _more_tool_cases(env, ex, spec, scenarios, rng)
    _determinism(env, ex, spec)
    _repair_output_schemas(ex, spec)
    return ex


def repair_output_schema(schema: dict, outputs: list) -> tuple[dict, list[str]]:
    """Relax the metadata's output_schema where the tool's real outputs disagree (the paper's server never
    checked outputs against it): a field seen null becomes nullable, a violated constraint is dropped, a part
    whose shape differs accepts anything. Returns the schema and one note per change."""
    schema = json.loads(json.dumps(schema))
    notes: list[str] = []
    for _ in range(64):
        try:
            validator = jsonschema.Draft202012Validator(schema)
            error = next((e for out in outputs for e in validator.iter_errors(out)), None)
        except jsonschema.exceptions.SchemaError as exc:
            return {}, [f"its output_schema is not a valid JSON schema ({exc.message[:80]}): dropped"]
        if error is None:
            return schema, notes
        *where_schema, keyword = list(error.schema_path) or [None]
        sub = schema
        for key in where_schema:
            sub = sub[key]
        where = "/".join(str(p) for p in error.absolute_path) or "the output"
        if keyword == "type" and error.instance is None and isinstance(sub, dict):
            types = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
            sub["type"] = [*types, "null"]
            notes.append(f"{where} can be null")
        elif keyword == "required" and isinstance(sub, dict):
            present = error.instance if isinstance(error.instance, dict) else {}
            sub["required"] = [r for r in sub.get("required", []) if r in present]
            notes.append(f"{where}: {error.message[:80]} (no longer required)")
        elif keyword == "type" or keyword is None or not isinstance(sub, dict):
            if isinstance(sub, dict):
                sub.clear()
            notes.append(f"{where}: {error.message[:100]} (that part of the schema now accepts any value)")
        else:
            sub.pop(keyword, None)
            notes.append(f"{where}: {error.message[:80]} (constraint {keyword} dropped)")
    return {}, notes + ["too many mismatches: output_schema dropped"]


def _repair_output_schemas(ex: Exploration, spec: EnvSpec) -> None:
    outputs: dict[str, list] = {}
    for outcome in ex.tools.values():
        outputs.setdefault(outcome.tool, []).extend(c.result["ok"] for c in outcome.calls if c.kind == "ok")
    for case in ex.cases:
        for step in case.steps:
            if step.expect_output is not None:
                outputs.setdefault(step.tool, []).append(step.expect_output)
    for tool in spec.tools:
        seen = outputs.get(tool.name) or []
        if not tool.output_schema or not seen:
            continue
        repaired, notes = repair_output_schema(tool.output_schema, seen)
        if notes:
            ex.output_schemas[tool.name] = repaired
            ex.schema_fixes.extend(f"{tool.name} output_schema: {n}" for n in notes)


def _more_tool_cases(env: SandboxedEnv, ex: Exploration, spec: EnvSpec, scenarios: dict, rng) -> None:
    """Environments with fewer than MIN_TOOL_CASES tools get further calls (other scenarios, other values)."""
    have = {json.dumps([c.steps[0].tool, c.steps[0].args, c.scenario], sort_keys=True)
            for c in ex.cases if c.name.startswith("tool ")}
    passing = [t for t in spec.tools if ex.tools[t.name].passed]
    tries = 0
    while passing and ex.tool_cases < MIN_TOOL_CASES and tries < 12 * MIN_TOOL_CASES:
        tool = passing[tries % len(passing)]
        sid = ex.loaded[(tries // len(passing)) % len(ex.loaded)]
        tries += 1
        args = build_args(tool, scenarios[sid], rng, optional=tries % 2 == 0)
        if args is None:
            continue
        key = json.dumps([tool.name, args, sid], sort_keys=True)
        if key in have:
            continue
        env.reset(sid)
        record = CallRecord(tool.name, sid, args, env.call(tool.name, args))
        ex.tools[tool.name].calls.append(record)
        if record.kind in UNEXPECTED:
            continue
        have.add(key)
        ex.cases.append(Case(name=f"tool {tool.name} ({sid}) #{ex.tool_cases + 1}", scenario=sid,
                             steps=[_step(record)]))


def _determinism(env: SandboxedEnv, ex: Exploration, spec: EnvSpec) -> None:
    """The same calls from the same scenario twice in this worker (after all the calls above): same outputs
    and state hash. The fresh-worker half is the case added here, re-run by the final verification."""
    by_scenario: dict[str, list[CallRecord]] = {}
    for outcome in ex.tools.values():
        kept = outcome.kept
        if kept is not None and outcome.passed:
            by_scenario.setdefault(kept.scenario, []).append(kept)
    if not by_scenario:
        return
    sid, records = max(by_scenario.items(), key=lambda kv: (sum(r.kind == "ok" for r in kv[1]), len(kv[1])))
    # calls that changed something first matter most; keep spec order otherwise
    records = records[:DETERMINISM_STEPS]
    runs = []
    for _ in range(2):
        env.reset(sid)
        results = [env.call(r.tool, r.args) for r in records]
        runs.append((results, env.state_hash()))
    (first, h1), (second, h2) = runs
    for r, a, b in zip(records, first, second):
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            ex.determinism_problem = (f"{r.tool} answered differently to the same call from the same state "
                                      f"({_short(a)} vs {_short(b)})")
            return
    if h1 != h2:
        ex.determinism_problem = "the same calls from the same scenario reached different states"
        return
    steps = [_step(CallRecord(r.tool, sid, r.args, res)) for r, res in zip(records, first)]
    if any(s.expect_error in UNEXPECTED for s in steps):
        bad = next(r.tool for r, s in zip(records, steps) if s.expect_error in UNEXPECTED)
        ex.determinism_problem = f"{bad} failed unexpectedly when called after the others"
        return
    ex.cases.append(Case(name=f"determinism ({sid}, {len(steps)} calls)", scenario=sid, steps=steps,
                         expect_hash=h1))


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _reset_message(exc: SandboxError) -> str:
    text = str(exc)
    if "reset failed: " in text:
        text = text.split("reset failed: ", 1)[1]
        try:
            text = ast.literal_eval(text)["error"]["message"]
        except (ValueError, SyntaxError, KeyError, TypeError):
            pass
    return " ".join(text.split("\n--- worker log ---")[0].split())[:300]
