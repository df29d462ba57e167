"""Adapter for environments in the paper's released format.

Their classes keep state in their own attributes and expose `load_scenario(dict)`
/ `save_scenario() -> dict`. Their state is not journaled, so the adapter
snapshots it (via `save_scenario`) before each call: rollback stays correct,
at O(state) per call instead of O(changes) for native environments.
"""

from __future__ import annotations

import json

from .base import Environment


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
