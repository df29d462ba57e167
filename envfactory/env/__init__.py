"""Environment runtime: the contract (`Environment`), specs, sandboxed execution, MCP exposure.

Names are loaded on first use (PEP 562), so importing a light submodule (e.g. `env.limits` from the experiment
config) does not load the runtime."""

from importlib import import_module

_LAZY = {"Environment": ".base", "ErrorKind": ".errors", "ToolError": ".errors", "ToolFailure": ".errors"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
