"""Validation cases (`tests.json`) and their runner.

    {"cases": [
      {"name": "book then cancel", "scenario": "default",
       "steps": [
         {"tool": "book_room", "args": {"hotel_id": "H001", "guest": "Ana"},
          "expect_subset": {"status": "confirmed"}},
         {"tool": "cancel_booking", "args": {"booking_id": {"$ref": "0.booking_id"}},
          "expect_output": {"booking_id": "BK0001", "status": "cancelled"}},
         {"tool": "cancel_booking", "args": {"booking_id": "NOPE"}, "expect_error": "domain_error"}],
       "expect_state": [{"path": ["bookings", "BK0001", "status"], "equals": "cancelled"},
                        {"path": ["bookings", "BK9999"], "absent": true}]}]}

A step's args may reference an earlier step's output with {"$ref": "<step>.<key>.<index>..."}.
A step with `expect_error` also checks that the failed call left the state unchanged. A case's
`expect_hash` is the state hash the steps must reach (determinism checks of imported environments).
The runner talks to any session with `call(tool, args) -> dict`, `reset(scenario)`,
`state() -> dict` and `state_hash() -> str`: the sandbox in production, the
in-process runtime in unit tests.
"""

from __future__ import annotations

from typing import Any, Protocol

import jsonschema
from pydantic import BaseModel, ConfigDict, Field

from .spec import EnvSpec


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    expect_output: Any = None
    expect_subset: Any = None
    expect_error: str | None = None
    expect_len: int | None = None


class StateAssert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: list[str | int]
    equals: Any = None
    absent: bool = False


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    scenario: str
    steps: list[Step]
    expect_state: list[StateAssert] = Field(default_factory=list)
    expect_unchanged: bool = False
    expect_hash: str | None = None  # the state hash after the steps (determinism cases of imported environments)


class CaseSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cases: list[Case]


class CaseResult(BaseModel):
    name: str
    passed: bool
    failures: list[str] = Field(default_factory=list)


class Session(Protocol):
    def call(self, tool: str, args: Any) -> dict: ...
    def reset(self, scenario: str | dict) -> None: ...
    def state(self) -> dict: ...
    def state_hash(self) -> str: ...


_MISSING = object()


def lookup(data: Any, path: list) -> Any:
    for key in path:
        if isinstance(data, dict) and isinstance(key, str) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        elif isinstance(data, list) and isinstance(key, str) and key.lstrip("-").isdigit():
            idx = int(key)
            if not -len(data) <= idx < len(data):
                return _MISSING
            data = data[idx]
        else:
            return _MISSING
    return data


def is_subset(expected: Any, actual: Any) -> bool:
    """Every key/element of `expected` appears in `actual` (lists: element-wise prefix match)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and is_subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) >= len(expected)
                and all(is_subset(e, a) for e, a in zip(expected, actual)))
    if isinstance(expected, float) or isinstance(actual, float):
        return isinstance(actual, (int, float)) and abs(float(expected) - float(actual)) <= 1e-6
    return expected == actual and type(expected) is type(actual)


def _resolve(value: Any, outputs: list[Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            head, *rest = str(value["$ref"]).split(".")
            found = lookup(outputs[int(head)], [int(p) if p.lstrip("-").isdigit() else p for p in rest])
            if found is _MISSING:
                raise LookupError(f"unresolvable $ref {value['$ref']!r}")
            return found
        return {k: _resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, outputs) for v in value]
    return value


def run_case(session: Session, case: Case, spec: EnvSpec | None = None) -> CaseResult:
    failures: list[str] = []
    session.reset(case.scenario)
    initial = session.state_hash()
    outputs: list[Any] = []
    for i, step in enumerate(case.steps):
        label = f"step {i} ({step.tool})"
        try:
            args = _resolve(step.args, outputs)
        except (LookupError, IndexError, ValueError) as exc:
            failures.append(f"{label}: {exc}")
            outputs.append(None)
            continue
        before = session.state_hash() if step.expect_error else None
        result = session.call(step.tool, args)
        if "error" in result:
            outputs.append(result["error"])
            if step.expect_error is None:
                failures.append(f"{label}: unexpected error {result['error']}")
            elif result["error"]["kind"] != step.expect_error:
                failures.append(f"{label}: expected error {step.expect_error}, got {result['error']}")
            elif session.state_hash() != before:
                failures.append(f"{label}: failed call modified the state")
            continue
        out = result["ok"]
        outputs.append(out)
        if step.expect_error is not None:
            failures.append(f"{label}: expected error {step.expect_error}, got output {str(out)[:200]}")
            continue
        if step.expect_output is not None and not is_subset(step.expect_output, out) or (
                step.expect_output is not None and not is_subset(out, step.expect_output)):
            failures.append(f"{label}: expected {step.expect_output!r}, got {str(out)[:300]}")
        if step.expect_subset is not None and not is_subset(step.expect_subset, out):
            failures.append(f"{label}: expected subset {step.expect_subset!r}, got {str(out)[:300]}")
        if step.expect_len is not None and (not hasattr(out, "__len__") or len(out) != step.expect_len):
            failures.append(f"{label}: expected length {step.expect_len}, got {str(out)[:200]}")
        if spec is not None:
            tool = spec.tool(step.tool)
            if tool is not None and tool.output_schema:
                errors = list(jsonschema.Draft202012Validator(tool.output_schema).iter_errors(out))
                if errors:
                    failures.append(f"{label}: output violates output_schema: {errors[0].message}")
    if case.expect_state or case.expect_unchanged:
        state = session.state()
        for a in case.expect_state:
            got = lookup(state, a.path)
            if a.absent:
                if got is not _MISSING:
                    failures.append(f"state {a.path}: expected absent, got {str(got)[:200]}")
            elif got is _MISSING:
                failures.append(f"state {a.path}: missing, expected {a.equals!r}")
            elif not (is_subset(a.equals, got) and is_subset(got, a.equals)):
                failures.append(f"state {a.path}: expected {a.equals!r}, got {str(got)[:200]}")
        if case.expect_unchanged and session.state_hash() != initial:
            failures.append("state changed, expected unchanged")
    if case.expect_hash is not None:
        got_hash = session.state_hash()
        if got_hash != case.expect_hash:
            failures.append(f"state hash {got_hash[:12]} after the steps, expected {case.expect_hash[:12]} "
                            "(the same calls from the same scenario reached another state)")
    return CaseResult(name=case.name, passed=not failures, failures=failures)


def run_cases(session: Session, cases: CaseSet, spec: EnvSpec | None = None) -> list[CaseResult]:
    return [run_case(session, c, spec) for c in cases.cases]
