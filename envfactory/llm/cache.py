"""Content-addressed on-disk cache of completions.

Key = sha256 of the canonical JSON of (provider, endpoint, request without metadata).
Modes: `use` (read, else call and store), `refresh` (always call, store), `replay`
(read only; a miss raises `CacheMiss` so a replayed run can never silently call a model).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from ..io import atomic_write_text
from .types import ChatRequest, ChatResponse

CacheMode = Literal["use", "refresh", "replay", "off"]


class CacheMiss(LookupError):
    pass


def cache_key(provider: str, endpoint: str | None, request: ChatRequest) -> str:
    payload = {"provider": provider, "endpoint": endpoint or "", "request": request.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class ResponseCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> ChatResponse | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return ChatResponse.model_validate_json(path.read_text())

    def put(self, key: str, response: ChatResponse) -> None:
        atomic_write_text(self._path(key), response.model_dump_json())

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*/*.json"))
