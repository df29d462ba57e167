"""The engine registry and the request/result shapes every engine speaks.

Templates and tool-call parsing stay outside the engines (the local provider applies the checkpoint's own chat
template and parses Qwen3-style calls), so every engine sees the same token ids and greedy decoding is
comparable across them.
"""

from __future__ import annotations

import atexit
import importlib
import threading

from pydantic import BaseModel, Field

# name -> "module:Class"; resolved on first use so that config validation never imports torch or llama.cpp
ENGINES: dict[str, str] = {
    "transformers": "envfactory.generation.hf:TransformersEngine",
    "llama_cpp": "envfactory.generation.llamacpp:LlamaCppEngine",
}


class EngineError(RuntimeError):
    pass


class GenerationRequest(BaseModel):
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    # None = the checkpoint's generation config (what `generate` samples with); RL passes 0 / 1.0 to sample the
    # policy's full distribution, as TRL's GRPO does
    top_k: int | None = None
    top_p: float | None = None


class Generated(BaseModel):
    ids: list[int] = Field(description="new tokens, the stop token excluded")
    finish_reason: str  # "stop" | "length"
    cached_prompt_tokens: int = 0  # prompt tokens served from a kept KV cache, not recomputed
    stop_token: int | None = None  # the stop id that ended it: RL trains on it, so the policy learns to stop


def engine_class(name: str):
    if name not in ENGINES:
        raise EngineError(f"unknown generation engine {name!r}; known: {', '.join(sorted(ENGINES))}")
    module, cls = ENGINES[name].split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:  # e.g. llama-cpp-python not installed
        raise EngineError(f"generation engine {name!r} is not available: {exc}") from exc


_engines: dict[tuple, object] = {}
_engines_lock = threading.Lock()


def get_engine(name: str, model: str, workers: int = 1):
    """One engine per (engine, model weights, workers): a model retrained in place is reloaded (fingerprint)."""
    from ..default_model import resolve_model_path, weights_fingerprint

    key = (name, model, weights_fingerprint(model), workers)
    with _engines_lock:
        if key not in _engines:
            for old in [k for k in _engines if k[:2] == key[:2]]:  # the stale weights of this path
                _close(_engines.pop(old))
            _engines[key] = engine_class(name)(resolve_model_path(model), workers=workers)
        return _engines[key]


def _close(engine) -> None:
    if hasattr(engine, "close"):
        engine.close()


@atexit.register
def close_engines() -> None:
    with _engines_lock:
        while _engines:
            _close(_engines.popitem()[1])
