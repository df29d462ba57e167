"""The registry of LLM providers: one name -> one class; `make_provider` builds one from config."""

from __future__ import annotations

from typing import Callable, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .types import ChatRequest, ChatResponse


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="registered provider: openai | anthropic | local | scripted")
    model: str = Field("", description="model id for the provider")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint (vLLM, SGLang, a local server)")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    timeout_s: float = 120.0
    max_retries: int = 5
    concurrency: int = 4
    responses: str | None = Field(None, description="scripted provider: JSON file of responses")
    price_per_mtok: tuple[float, float] | None = Field(
        None, description="(input, output) USD per million tokens, for cost accounting")
    options: dict = Field(default_factory=dict, description="provider-specific extras")


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
