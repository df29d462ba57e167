"""The registry of LLM providers: one name -> one class; `make_provider` builds one from config."""

from __future__ import annotations

from typing import Callable, Protocol

from .types import ChatRequest, ChatResponse, ProviderConfig  # noqa: F401 - ProviderConfig re-exported


class Provider(Protocol):
    name: str

    def complete(self, request: ChatRequest) -> ChatResponse: ...


_REGISTRY: dict[str, Callable[[ProviderConfig], Provider]] = {}


def register_provider(name: str):
    def deco(cls):
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


def available_providers() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def make_provider(cfg: ProviderConfig) -> Provider:
    _load_builtin()
    if cfg.name not in _REGISTRY:
        raise ValueError(f"unknown LLM provider {cfg.name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[cfg.name](cfg)


def cache_identity(cfg: ProviderConfig, request: ChatRequest) -> str:
    """What, besides the request, decides a provider's answer: its endpoint, or (for a provider that defines
    `cache_identity`, e.g. local weights) a hash of the model itself."""
    _load_builtin()
    identity = getattr(_REGISTRY.get(cfg.name), "cache_identity", None)
    return identity(cfg, request) if identity else cfg.base_url or ""


def _load_builtin() -> None:
    from . import providers  # noqa: F401 - registers openai, anthropic, local, scripted
