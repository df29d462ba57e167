"""Scripted responses for tests and demos: no model, no network.

The responses file is a JSON list. Each item is either a response
(`{"content": ..., "tool_calls": [...]}`), consumed in order, or a rule
`{"match": {<metadata subset>}, "response": {...}, "repeat": false}` that answers
the first request whose metadata (step, env, round, ...) contains the match. A
callable can be given instead of a file (`ScriptedProvider.from_callable`).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Callable

from ..registry import register_provider
from ..types import ChatRequest, ChatResponse, ProviderConfig, Usage


class ScriptExhausted(RuntimeError):
    pass


@register_provider("scripted")
class ScriptedProvider:
    def __init__(self, cfg: ProviderConfig, script: list | Callable[[ChatRequest], dict] | None = None):
        self.cfg = cfg
        if script is None:
            if not cfg.responses:
                raise ValueError("scripted provider needs `responses` (a JSON file) or a callable")
            script = json.loads(Path(cfg.responses).read_text())
        self._script = script
        self._lock = threading.Lock()
        self.requests: list[ChatRequest] = []

    @classmethod
    def from_callable(cls, fn: Callable[[ChatRequest], dict], model: str = "scripted") -> "ScriptedProvider":
        return cls(ProviderConfig(name="scripted", model=model), fn)

    def _next(self, request: ChatRequest) -> dict:
        if callable(self._script):
            return self._script(request)
        for i, item in enumerate(self._script):
            if "match" in item:
                if all(request.metadata.get(k) == v for k, v in item["match"].items()):
                    if not item.get("repeat"):
                        self._script.pop(i)
                    return item["response"]
            else:
                return self._script.pop(i)
        raise ScriptExhausted(f"no scripted response left for request with metadata {request.metadata}")

    def complete(self, request: ChatRequest) -> ChatResponse:
        with self._lock:
            self.requests.append(request)
            data = dict(self._next(request))
        if not isinstance(data.get("content", ""), str):
            data["content"] = json.dumps(data["content"])  # allow structured content in scripts
        prompt = sum(len(m.content) for m in request.messages) // 4
        data.setdefault("usage", Usage(prompt_tokens=prompt, completion_tokens=len(data.get("content", "")) // 4))
        data.setdefault("model", request.model)
        return ChatResponse.model_validate(data)
