"""In-process engine of one environment: validated tool calls with rollback, resets, snapshots.

This is what runs *inside* a sandbox worker. The driver talks to it through
`envfactory.env.sandbox.SandboxedEnv`; only benchmarks and trusted tooling use
it directly.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import jsonschema

from .base import Environment
from .errors import ErrorKind, SandboxViolation, ToolFailure
from .package import EnvPackage, import_env_class
from .spec import EnvSpec
from .state import state_hash
from .tracked import StateTypeError, plain

_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def error_json(kind: ErrorKind, message: str) -> str:
    return _dumps({"error": {"kind": kind.value, "message": message[:2000]}})


def _schema_error_message(tool: str, validator, args: Any) -> str:
    err = jsonschema.exceptions.best_match(validator.iter_errors(args))
    where = "/".join(str(p) for p in err.absolute_path) or "arguments"
    return f"{tool}: {where}: {err.message}"


class EnvRuntime:
    """One live environment instance. Responses are JSON strings: {"ok": output} or {"error": {...}}."""

    def __init__(self, spec: EnvSpec, env_cls: type[Environment], scenarios: dict[str, dict] | None = None):
        if not (isinstance(env_cls, type) and issubclass(env_cls, Environment)):
            raise ImportError(f"{spec.class_name} must subclass envfactory.env.Environment")
        self.spec = spec
        self.env: Environment = env_cls()
        self._scenarios = scenarios or {}
        self._methods = {}
        self._validators = {}
        for t in spec.tools:
            method = getattr(self.env, t.name, None)
            if not callable(method):
                raise ImportError(f"tool {t.name!r} in spec is not a method of {spec.class_name}")
            check_signature(t.name, method, t.input_schema)
            self._methods[t.name] = method
            cls = jsonschema.validators.validator_for(t.input_schema, default=jsonschema.Draft202012Validator)
            self._validators[t.name] = cls(t.input_schema)
        self._base: str | None = None  # scenario id whose pristine state sits at journal mark 0

    @classmethod
    def from_package(cls, package: EnvPackage) -> "EnvRuntime":
        return cls(package.spec, import_env_class(package),
                   {sid: package.scenario(sid) for sid in package.scenario_ids()})

    # -- tool calls ----------------------------------------------------------
    def call_json(self, tool: str, args: Any) -> str:
        method = self._methods.get(tool)
        if method is None:
            return error_json(ErrorKind.unknown_tool, f"unknown tool {tool!r}; available: {', '.join(self._methods)}")
        validator = self._validators[tool]
        if not isinstance(args, dict) or not validator.is_valid(args):
            if not isinstance(args, dict):
                return error_json(ErrorKind.invalid_arguments, f"{tool}: arguments must be a JSON object")
            return error_json(ErrorKind.invalid_arguments, _schema_error_message(tool, validator, args))
        mark = self.env._mark()
        try:
            out = _dumps({"ok": method(**args)})
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a structured error
            self.env._undo_to(mark)
            return error_json(*classify(tool, exc))
        return out

    def call(self, tool: str, args: Any) -> dict:
        return json.loads(self.call_json(tool, args))

    # -- state ---------------------------------------------------------------
    def reset(self, scenario: str | dict) -> None:
        """Reset to a named scenario (O(changes) when it is the current base) or to an explicit state."""
        if isinstance(scenario, str):
            if scenario == self._base:
                self.env._undo_to(0)
                return
            if scenario not in self._scenarios:
                raise KeyError(f"no scenario {scenario!r}; have {sorted(self._scenarios)}")
            self.env.load_scenario(self._scenarios[scenario])
            self._base = scenario
        else:
            self.env.load_scenario(scenario)
            self._base = None

    def state(self) -> dict:
        return plain(self.env.save_scenario())

    def state_hash(self) -> str:
        return state_hash(self.env._state_view())


def check_signature(name: str, method, input_schema: dict) -> None:
    """The spec's parameters must be exactly the method's (names, and which are required)."""
    params = {p.name: p for p in inspect.signature(method).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(method).parameters.values())
    props = set(input_schema.get("properties", {}))
    required = set(input_schema.get("required", []))
    missing = props - set(params) if not accepts_kwargs else set()
    if missing:
        raise ImportError(f"tool {name!r}: spec parameters {sorted(missing)} are not parameters of the method")
    unfilled = {n for n, p in params.items() if p.default is p.empty} - required
    if unfilled:
        raise ImportError(f"tool {name!r}: method parameters {sorted(unfilled)} have no default "
                          "but are not required in the spec")


def classify(tool: str, exc: BaseException) -> tuple[ErrorKind, str]:
    if isinstance(exc, ToolFailure):
        return ErrorKind.domain_error, str(exc)
    if isinstance(exc, SandboxViolation):
        return ErrorKind.sandbox_violation, str(exc)
    if isinstance(exc, PermissionError):
        return ErrorKind.sandbox_violation, f"operation not permitted in the sandbox: {exc}"
    if isinstance(exc, MemoryError):
        return ErrorKind.resource_limit, f"{tool}: memory limit exceeded"
    if isinstance(exc, (TypeError, ValueError)) and "JSON" in str(exc) or isinstance(exc, StateTypeError):
        return ErrorKind.invalid_output, f"{tool}: {exc}"
    return ErrorKind.exception, f"{tool} raised {type(exc).__name__}: {exc}"
