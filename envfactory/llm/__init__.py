"""LLM providers behind one interface (chat with tools + structured output), a response cache and accounting.

Names are loaded on first use (PEP 562): the experiment config imports only `llm.types` (ProviderConfig)."""

from importlib import import_module

_LAZY = {"CacheMiss": ".cache", "ResponseCache": ".cache", "LLMClient": ".client", "UsageTotals": ".client",
         "ProviderConfig": ".types", "available_providers": ".registry", "make_provider": ".registry",
         "register_provider": ".registry", "ChatRequest": ".types", "ChatResponse": ".types", "Message": ".types",
         "ToolCall": ".types", "Usage": ".types"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
