"""Adapters for environments in the paper's released format. Worker side: they run untrusted code.

Two shapes:

* `wrap_paper_class` (`envfactory envs import`): a plain class with `load_scenario(dict)` / `save_scenario()`
  whose methods are the tools. Its state is not journaled, so the adapter snapshots it (via
  `save_scenario`) before each call: rollback stays correct, at O(state) per call.
* `paper_module_env` (`envfactory envs import-release`, the release as published): the module is the paper's
  MCP server. Its tools are the `@mcp.tool()` functions, which check arguments, fill defaults and call the
  module's global instance of the state class; `load_scenario` / `save_scenario` are reset and snapshot.
  FastMCP is not needed: a recording shim stands in for `mcp.server.fastmcp` / `fastmcp` (its `tool()`
  records functions, `run()` does nothing). Where it changes no semantics the module is made deterministic
  before it is imported: `random`, `uuid.uuid4`/`uuid1`, `secrets` and `os.urandom` are seeded from the
  scenario on every load, the local time zone is UTC, and (only for modules that read it) the wall clock is
  pinned to the scenario's own `current_time`/`current_date` (else a fixed instant).

Only sandbox workers import this module's paper side (`env.py` of an imported package calls it after the
worker has confined itself); the driver never does.
"""

from __future__ import annotations

import copy
import datetime as _dt
import enum
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import random
import sys
import time as _time
import types
import uuid
from pathlib import Path
from typing import Any

from .base import Environment
from .errors import ToolFailure


class PaperEnvAdapter(Environment):
    Inner: type = object

    def __init__(self) -> None:
        super().__init__()
        self._inner = self.Inner()
        self._base: str = "{}"
        self._last: str = "{}"

    def load_scenario(self, scenario: dict) -> None:
        self._inner = self.Inner()
        self._inner.load_scenario(json.loads(json.dumps(scenario)))
        self._base = json.dumps(self._inner.save_scenario())

    def save_scenario(self) -> dict:
        return json.loads(json.dumps(self._inner.save_scenario()))

    def _state_view(self):
        return self._inner.save_scenario()

    def _mark(self) -> int:
        self._last = json.dumps(self._inner.save_scenario())
        return 1

    def _undo_to(self, mark: int) -> None:
        self._inner = self.Inner()
        self._inner.load_scenario(json.loads(self._base if mark == 0 else self._last))


def wrap_paper_class(inner: type, tool_names: list[str], name: str, domain: str) -> type[PaperEnvAdapter]:
    def make_tool(tool: str):
        def call(self, **kwargs):
            return getattr(self._inner, tool)(**kwargs)

        call.__name__ = tool
        return call

    namespace = {"Inner": inner, "name": name, "domain": domain, "__doc__": inner.__doc__}
    for tool in tool_names:
        if not callable(getattr(inner, tool, None)):
            raise ImportError(f"{inner.__name__} has no method {tool!r} declared in the metadata")
        namespace[tool] = make_tool(tool)
    return type(inner.__name__, (PaperEnvAdapter,), namespace)


# ------------------------------------------------------------------ FastMCP stand-in

SHIM_ROOTS = ("mcp", "fastmcp")


class RecordingFastMCP:
    """Stand-in for `FastMCP`: `tool()` records the decorated function, `run()` does nothing."""

    instances: list["RecordingFastMCP"] = []

    def __init__(self, name: str | None = None, *args, **kwargs) -> None:
        self.name = name
        self.tools: dict[str, Any] = {}
        RecordingFastMCP.instances.append(self)

    def _record(self, fn, name: str | None):
        self.tools[name or fn.__name__] = fn
        return fn

    def tool(self, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:  # bare @mcp.tool
            return self._record(args[0], None)
        name = kwargs.get("name") or (args[0] if args and isinstance(args[0], str) else None)
        return lambda fn: self._record(fn, name)

    def add_tool(self, fn, name: str | None = None, **kwargs):
        return self._record(fn, name)

    def _passthrough(self, *args, **kwargs):  # resource(), prompt(), custom_route(): not tools
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda fn: fn

    resource = prompt = custom_route = _passthrough

    def run(self, *args, **kwargs) -> None:
        return None


class _Placeholder:
    def __init__(self, *args, **kwargs) -> None:
        pass


def _shim_module(name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__path__ = []  # a package: submodules resolve through the finder below
    mod.__file__ = f"<envfactory fastmcp shim: {name}>"
    mod.FastMCP = RecordingFastMCP
    mod.Context = type("Context", (_Placeholder,), {})

    def __getattr__(attr: str):  # Image, TextContent, ...: inert placeholders
        if attr.startswith("__"):
            raise AttributeError(attr)
        return type(attr, (_Placeholder,), {})

    mod.__getattr__ = __getattr__
    return mod


class _ShimFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves `mcp`, `mcp.server.fastmcp`, `fastmcp`, ... (any submodule) as shim modules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in SHIM_ROOTS:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _shim_module(spec.name)

    def exec_module(self, module) -> None:
        parent, _, child = module.__name__.rpartition(".")
        if parent and parent in sys.modules:
            setattr(sys.modules[parent], child, module)


def install_fastmcp_shim() -> None:
    """Make `from mcp.server.fastmcp import FastMCP` and `from fastmcp import FastMCP` give the recording
    stand-in, in this process (a sandbox worker) only."""
    for name in [n for n in sys.modules if n.split(".")[0] in SHIM_ROOTS]:
        del sys.modules[name]
    if not any(isinstance(f, _ShimFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _ShimFinder())


# ------------------------------------------------------------------ determinism

_REAL_RANDOM = random.Random


class _SeededRandom(_REAL_RANDOM):
    """`random.Random()` / `SystemRandom()` without a seed: seeded from the scenario (and a counter)."""

    def __init__(self, x=None) -> None:
        super().__init__(DETERMINISM.next_seed() if x is None else x)


class Determinism:
    """Seeded replacements for the module-level sources of randomness, reseeded from each loaded scenario."""

    def __init__(self) -> None:
        self.rng = _REAL_RANDOM(0)  # uuid4 / secrets / urandom
        self.counter = 0
        self.seed = 0
        self.installed = False
        self.pinned: _dt.datetime | None = None

    def next_seed(self) -> int:
        self.counter += 1
        return self.seed * 1_000_003 + self.counter

    def install(self) -> None:
        if self.installed:
            return
        import secrets

        rng = self.rng
        uuid.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)
        uuid.uuid1 = lambda node=None, clock_seq=None: uuid.UUID(int=rng.getrandbits(128), version=1)
        os.urandom = lambda n: rng.randbytes(n)
        random.Random = _SeededRandom
        random.SystemRandom = _SeededRandom
        secrets.SystemRandom = _SeededRandom
        secrets._sysrand = _SeededRandom(0)
        secrets.choice = secrets._sysrand.choice
        secrets.randbits = secrets._sysrand.getrandbits
        secrets.token_bytes = lambda nbytes=None: rng.randbytes(32 if nbytes is None else nbytes)
        os.environ["TZ"] = "UTC"
        _time.tzset()
        self.installed = True

    def reseed(self, scenario: Any) -> None:
        digest = hashlib.sha256(json.dumps(scenario, sort_keys=True, default=str).encode()).digest()
        self.seed = int.from_bytes(digest[:8], "big")
        self.counter = 0
        random.seed(self.seed)
        self.rng.seed(self.seed + 1)
        secrets_rng = sys.modules.get("secrets")
        if secrets_rng is not None and isinstance(getattr(secrets_rng, "_sysrand", None), _SeededRandom):
            secrets_rng._sysrand.seed(self.seed + 2)
        self.pinned = _scenario_instant(scenario)

    def state(self) -> tuple:
        sysrand = getattr(sys.modules.get("secrets"), "_sysrand", None)
        return (random.getstate(), self.rng.getstate(), self.counter, self.seed, self.pinned,
                sysrand.getstate() if isinstance(sysrand, _SeededRandom) else None)

    def restore(self, state: tuple) -> None:
        rstate, ustate, self.counter, self.seed, self.pinned, sstate = state
        random.setstate(rstate)
        self.rng.setstate(ustate)
        sysrand = getattr(sys.modules.get("secrets"), "_sysrand", None)
        if sstate is not None and isinstance(sysrand, _SeededRandom):
            sysrand.setstate(sstate)


DETERMINISM = Determinism()
_DEFAULT_INSTANT = _dt.datetime(2025, 1, 1, 12, 0, 0)


def _scenario_instant(scenario: Any) -> _dt.datetime:
    """The scenario's own notion of "now" (`current_time`, `current_date`, `now`, `today`), else a fixed one."""
    if isinstance(scenario, dict):
        for key in ("current_time", "current_datetime", "current_date", "now", "today"):
            value = scenario.get(key)
            if isinstance(value, str):
                try:
                    parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
                    return parsed.replace(tzinfo=None)
                except ValueError:
                    continue
    return _DEFAULT_INSTANT


class _PinnedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        now = DETERMINISM.pinned or _DEFAULT_INSTANT
        return cls.fromtimestamp(now.replace(tzinfo=_dt.timezone.utc).timestamp(), tz) if tz else cls(
            now.year, now.month, now.day, now.hour, now.minute, now.second, now.microsecond)

    @classmethod
    def utcnow(cls):
        return cls.now()

    @classmethod
    def today(cls):
        return cls.now()


class _PinnedDate(_dt.date):
    @classmethod
    def today(cls):
        now = DETERMINISM.pinned or _DEFAULT_INSTANT
        return cls(now.year, now.month, now.day)


def _pinned_time() -> float:
    return (DETERMINISM.pinned or _DEFAULT_INSTANT).replace(tzinfo=_dt.timezone.utc).timestamp()


def pin_clock(module: types.ModuleType) -> None:
    """Rebind the module's `datetime` / `date` / `time` names so that clock reads give the scenario's instant.
    Only names in the module's own namespace change; pydantic models built from the real types are untouched."""
    g = module.__dict__
    for key, value in list(g.items()):
        if value is _dt:
            proxy = types.ModuleType("datetime")
            proxy.__dict__.update({k: v for k, v in vars(_dt).items() if not k.startswith("__")})
            proxy.datetime, proxy.date = _PinnedDatetime, _PinnedDate
            g[key] = proxy
        elif value is _dt.datetime:
            g[key] = _PinnedDatetime
        elif value is _dt.date:
            g[key] = _PinnedDate
        elif value is _time:
            proxy = types.ModuleType("time")
            proxy.__dict__.update({k: v for k, v in vars(_time).items() if not k.startswith("__")})
            proxy.time = _pinned_time
            proxy.time_ns = lambda: int(_pinned_time() * 1e9)
            proxy.monotonic = proxy.perf_counter = _pinned_time
            g[key] = proxy


# ------------------------------------------------------------------ JSON as FastMCP would serialize it

def jsonable(value: Any, _depth: int = 0) -> Any:
    """Tool outputs and saved states as plain JSON (pydantic models dumped, dates ISO, sets sorted)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if _depth > 60:
        return str(value)
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, _depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v, _depth + 1) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return jsonable(dump(mode="json"), _depth + 1)
        except Exception:  # noqa: BLE001 - fall back to the python-mode dump
            return jsonable(dump(), _depth + 1)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value, _depth + 1)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


# ------------------------------------------------------------------ the paper's module as an environment

class PaperModuleEnv(Environment):
    """An environment whose tools are the paper module's `@mcp.tool()` functions (see `paper_module_env`)."""

    _module: types.ModuleType
    _instance: Any
    _load_fn: Any
    _save_fn: Any

    def __init__(self) -> None:
        super().__init__()
        self._base_snapshot: tuple | None = None
        self._last_snapshot: tuple | None = None

    # scenario I/O: the module's own load_scenario / save_scenario
    def load_scenario(self, scenario: dict) -> None:
        data = json.loads(json.dumps(scenario))
        DETERMINISM.reseed(data)
        try:
            self._load_fn(data)
        except ValueError as exc:  # pydantic ValidationError included: the scenario is invalid for this module
            raise ToolFailure(f"load_scenario refused the scenario: {_one_line(exc)}") from None
        self._base_snapshot = self._snapshot()

    def save_scenario(self) -> dict:
        return jsonable(self._save_fn())

    def _state_view(self) -> Any:
        return self.save_scenario()

    # rollback: a deep copy of the instance (exact, whatever save/load would lose) plus the RNG state
    def _snapshot(self) -> tuple:
        try:
            return ("copy", copy.deepcopy(self._instance.__dict__), DETERMINISM.state())
        except Exception:  # noqa: BLE001 - an attribute that cannot be copied: round-trip through save/load
            return ("scenario", json.dumps(self.save_scenario()), DETERMINISM.state())

    def _restore(self, snap: tuple) -> None:
        kind, data, rng = snap
        if kind == "copy":
            self._instance.__dict__.clear()
            self._instance.__dict__.update(copy.deepcopy(data))
        else:
            self._load_fn(json.loads(data))
        DETERMINISM.restore(rng)

    def _mark(self) -> int:
        self._last_snapshot = self._snapshot()
        return 1

    def _undo_to(self, mark: int) -> None:
        snap = self._base_snapshot if mark == 0 else self._last_snapshot
        if snap is not None:
            self._restore(snap)


def _one_line(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":  # pydantic: field paths and messages only
        try:
            found = errors()
            parts = []
            for e in found[:3]:
                got = repr(e.get("input"))
                parts.append(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'value'}: {e.get('msg', '')}"
                             + (f" (got {got})" if e.get("type") != "missing" and len(got) <= 40 else ""))
            more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
            return f"ValidationError: {'; '.join(parts)}{more}"[:600]
        except Exception:  # noqa: BLE001 - fall back to the plain text
            pass
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:400]}" if text else type(exc).__name__


def load_paper_module(path: Path, module_name: str, pin: bool = False) -> types.ModuleType:
    """Import the paper's module with the FastMCP shim and the determinism patches in place (worker only)."""
    install_fastmcp_shim()
    DETERMINISM.install()
    RecordingFastMCP.instances.clear()
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ImportError(f"{path.name} has a syntax error at line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # noqa: BLE001 - any import-time failure is the module's defect
        tb = exc.__traceback__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = tb.tb_lineno
            tb = tb.tb_next
        where = f" (line {line})" if line else ""
        raise ImportError(f"{path.name} failed to import{where}: {_one_line(exc)}") from None
    if pin:
        pin_clock(module)
    return module


def paper_module_env(env_file: str, binding: dict) -> type[PaperModuleEnv]:
    """Build the environment class of an imported package. `binding` (written by the importer):
    `module` (file name), `name`, `domain`, `state_class`, `pin_clock`, and `tools`:
    {tool: {"function": name | None, "method": name | None, "params": {spec param: function param}}}."""
    root = Path(env_file).resolve().parent
    module = load_paper_module(root / binding["module"], f"paper_env_{binding['name']}",
                               pin=binding.get("pin_clock", False))
    recorded: dict[str, Any] = {}
    for server in RecordingFastMCP.instances:
        recorded.update(server.tools)
    classes = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__
               and callable(getattr(v, "load_scenario", None)) and callable(getattr(v, "save_scenario", None))]
    wanted = binding.get("state_class")
    cls = next((c for c in classes if c.__name__ == wanted), classes[0] if classes else None)
    if cls is None:
        raise ImportError(f"{binding['module']} defines no class with load_scenario/save_scenario")
    instances = [v for k, v in vars(module).items() if isinstance(v, cls) and not k.startswith("__")]
    if instances:
        instance = instances[0]
    else:  # no module-global instance: the tools can only be the class methods of our own instance
        instance = cls()
    load_fn = recorded.get("load_scenario") if instances else None
    save_fn = recorded.get("save_scenario") if instances else None
    namespace: dict[str, Any] = {
        "name": binding["name"], "domain": binding["domain"], "__doc__": cls.__doc__, "_module": module,
        "_instance": instance, "_load_fn": staticmethod(load_fn or instance.load_scenario),
        "_save_fn": staticmethod(save_fn or instance.save_scenario)}
    for tool, how in binding["tools"].items():
        fn = recorded.get(how.get("function") or "") if instances else None
        if fn is None and how.get("method"):
            fn = getattr(instance, how["method"], None)
        if not callable(fn):
            raise ImportError(f"tool {tool!r}: no @mcp.tool() function {how.get('function')!r} "
                              f"and no method {how.get('method')!r} in {binding['module']}")
        namespace[tool] = _make_tool(tool, fn, how.get("params") or {})
    return type(binding.get("class_name") or cls.__name__, (PaperModuleEnv,), namespace)


def _make_tool(tool: str, fn, params: dict[str, str | None]):
    import inspect

    try:
        sig = inspect.signature(fn)
        accepted = None if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()) else set(sig.parameters)
    except (TypeError, ValueError):
        accepted = None
    if inspect.iscoroutinefunction(fn):
        raise ImportError(f"tool {tool!r} is an async function; not supported in the sandbox")

    def call(self, **kwargs):
        args = {}
        for key, value in kwargs.items():
            target = params.get(key, key)
            if target is not None and (accepted is None or target in accepted):
                args[target] = value  # arguments the function does not take are ignored, as FastMCP does
        try:
            out = fn(**args)
        except ValueError as exc:  # the paper's tools refuse with ValueError (pydantic's ValidationError too)
            message = _one_line(exc)
            raise ToolFailure(message.removeprefix("ValueError: ") if type(exc) is ValueError else message) from None
        return jsonable(out)

    call.__name__ = tool
    call.__doc__ = getattr(fn, "__doc__", None)
    return call
