"""Environments for TRL's GRPOTrainer `environment_factory`: one task row's sandboxed environments per rollout.

TRL discovers tools as public methods (schema from signature + docstring) and calls them with the model's
arguments. Here the methods are generated from each environment's spec and forward to a `SandboxedEnv`, so the
same validation, structured errors and rollback apply as everywhere else: a bad call returns an error string to
the model, never an exception. Sandbox workers are expensive, so instances borrow them from a `SessionPool` at
`reset` and give them back once the rollout is scored.
"""

from __future__ import annotations

import inspect
import json
import threading
from typing import Any

from ..env.package import EnvPackage
from ..env.sandbox import SandboxedEnv, SandboxLimits
from .rewards import RolloutOutcome, row_outcome
from .rows import TrainView

_JSON_TO_PY = {"string": str, "integer": int, "number": float, "boolean": bool, "array": list, "object": dict}


class SessionPool:
    """Idle sandbox workers per environment, reused across rollouts (reset makes reuse safe)."""

    def __init__(self, packages: dict[str, EnvPackage], limits: SandboxLimits | None = None):
        self.packages, self.limits = packages, limits
        self._idle: dict[str, list[SandboxedEnv]] = {}
        self._lock = threading.Lock()
        self.created = 0

    def acquire(self, env: str) -> SandboxedEnv:
        with self._lock:
            idle = self._idle.setdefault(env, [])
            if idle:
                return idle.pop()
            self.created += 1
        return SandboxedEnv(self.packages[env], limits=self.limits)

    def release(self, env: str, session: SandboxedEnv) -> None:
        with self._lock:
            self._idle.setdefault(env, []).append(session)

    def close(self) -> None:
        with self._lock:
            for sessions in self._idle.values():
                for s in sessions:
                    s.close()
            self._idle.clear()


def _py_type(schema: dict) -> Any:
    types = [s.get("type") for s in schema.get("anyOf", [])] or [schema.get("type")]
    non_null = [t for t in types if t and t != "null"]
    py = _JSON_TO_PY.get(non_null[0], str) if non_null else str
    return py | None if "null" in types else py


def _tool_method(name: str, tool: dict):
    """A method whose signature and docstring mirror the tool's JSON schema (TRL renders and validates from them)."""
    params = tool["function"].get("parameters", {})
    props, required = params.get("properties", {}), set(params.get("required", []))

    def method(self, **arguments):
        return self._call(name, arguments)

    sig = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations = {}
    for p, schema in props.items():
        annotations[p] = _py_type(schema)
        sig.append(inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, annotation=annotations[p],
                                     default=inspect.Parameter.empty if p in required else None))
    method.__signature__ = inspect.Signature(sig, return_annotation=str)
    method.__annotations__ = {**annotations, "return": str}
    method.__name__ = method.__qualname__ = name
    arg_doc = "".join(f"\n    {p}: {(s.get('description') or p).replace(chr(10), ' ')}" for p, s in props.items())
    method.__doc__ = (tool["function"].get("description") or name) + (f"\n\nArgs:{arg_doc}" if props else "")
    return method


class TaskEnvironment:
    """Base of the generated classes; one subclass per environment combination (its tools as methods)."""
    envs: tuple[str, ...] = ()
    routes: dict[str, tuple[str, str]] = {}

    def __init__(self, pool: SessionPool, tokenizer=None, view: TrainView | None = None):
        self._pool, self._tokenizer, self._view = pool, tokenizer, view or TrainView(max_tool_tokens=None)
        self._sessions: dict[str, SandboxedEnv] = {}
        self._row: dict = {}
        self._calls: list[tuple[str, str, Any]] = []
        self._initial: dict[str, str] = {}

    def reset(self, **row) -> None:
        self._give_back()
        self._row, self._calls = row, []
        for env, scenario in json.loads(row["scenarios"]).items():
            session = self._pool.acquire(env)
            session.reset(scenario)
            self._sessions[env] = session
            self._initial[env] = session.state_hash()
        return None  # the prompt already holds the request

    def _call(self, name: str, arguments: dict) -> str:
        env, tool = self.routes[name]
        if env not in self._sessions:
            return json.dumps({"error": {"kind": "not_ready", "message": "environment not reset"}})
        self._calls.append((env, tool, arguments))
        result = self._sessions[env].call(tool, arguments)
        return self._view.shorten(json.dumps(result, ensure_ascii=False), self._tokenizer)

    def call_tool(self, name: str, arguments: dict) -> str:
        """A parsed call by name (engine rollouts): a tool this row does not offer is an error the model reads."""
        if name not in self.routes:
            return json.dumps({"error": {"kind": "unknown_tool", "message": f"no tool named {name!r}"}})
        return self._call(name, arguments)

    def outcome(self, format_errors: int = 0) -> RolloutOutcome:
        """Score inputs of the finished rollout; returns the sandbox workers to the pool."""
        outcome = row_outcome(self._row, list(self._calls), format_errors,
                              {e: s.state_hash() for e, s in self._sessions.items()}, dict(self._initial))
        self._give_back()
        return outcome

    def release(self) -> None:
        """Give the sandbox workers back without scoring (a rollout that failed)."""
        self._give_back()

    def _give_back(self) -> None:
        for env, session in self._sessions.items():
            self._pool.release(env, session)
        self._sessions = {}


def environment_class(envs: list[str], tools: list[dict], routes: dict[str, tuple[str, str]]) -> type:
    """A TaskEnvironment subclass exposing `tools` (OpenAI dicts, names as offered) as methods."""
    members = {"envs": tuple(envs), "routes": dict(routes)}
    for tool in tools:
        name = tool["function"]["name"]
        if not name.isidentifier() or name.startswith("_") or name in ("reset", "outcome", "get_reward"):
            raise ValueError(f"tool name {name!r} cannot be exposed as a method")
        members[name] = _tool_method(name, tool)
    return type("Env_" + "_".join(envs), (TaskEnvironment,), members)
