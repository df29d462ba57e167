"""The registry of LLM providers: one name -> one class; `make_provider` builds one from config.

Lazy, as the benchmark registry (`evals/registry.py`) and lm-evaluation-harness's registries are: a built-in is a
line `name -> "module:Class"`, imported on first use, so this module imports only `types` and no provider module
imports the registry's users. Providers import `types` (and this module's `register_provider`, which records the
class and its name when the module loads); the registry never imports the `providers` package. Providers defined
elsewhere (tests, private code) register with `@register_provider(name)`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Callable, Protocol

from .types import ChatRequest, ChatResponse, ProviderConfig  # noqa: F401 - ProviderConfig re-exported


class Provider(Protocol):
    name: str

    def complete(self, request: ChatRequest) -> ChatResponse: ...


BUILTIN: dict[str, str] = {
    "openai": "envfactory.llm.providers.openai_provider:OpenAIProvider",
    "anthropic": "envfactory.llm.providers.anthropic_provider:AnthropicProvider",
    "local": "envfactory.llm.providers.local:LocalProvider",
    "scripted": "envfactory.llm.providers.scripted:ScriptedProvider",
}
_REGISTRY: dict[str, Callable[[ProviderConfig], Provider]] = {}  # classes whose module has been loaded


def register_provider(name: str):
    def deco(cls):
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


def available_providers() -> list[str]:
    return sorted(set(BUILTIN) | set(_REGISTRY))


def provider_class(name: str) -> Callable[[ProviderConfig], Provider]:
    """The class registered as `name`, its module imported now if it is a built-in not loaded yet."""
    if name not in _REGISTRY and name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        cls = getattr(import_module(module), attr)
        _REGISTRY.setdefault(name, cls)
        cls.name = name
    if name not in _REGISTRY:
        raise ValueError(f"unknown LLM provider {name!r}; registered: {available_providers()}")
    return _REGISTRY[name]


def make_provider(cfg: ProviderConfig) -> Provider:
    return provider_class(cfg.name)(cfg)


def cache_identity(cfg: ProviderConfig, request: ChatRequest) -> str:
    """What, besides the request, decides a provider's answer: its endpoint, or (for a provider that defines
    `cache_identity`, e.g. local weights) a hash of the model itself."""
    known = cfg.name in _REGISTRY or cfg.name in BUILTIN
    identity = getattr(provider_class(cfg.name), "cache_identity", None) if known else None
    return identity(cfg, request) if identity else cfg.base_url or ""
