"""LLM providers behind one interface (chat with tools + structured output), a response cache and accounting."""

from .cache import CacheMiss, ResponseCache
from .client import LLMClient, UsageTotals
from .registry import ProviderConfig, available_providers, make_provider, register_provider
from .types import ChatRequest, ChatResponse, Message, ToolCall, Usage

__all__ = ["CacheMiss", "ChatRequest", "ChatResponse", "LLMClient", "Message", "ProviderConfig", "ResponseCache",
           "ToolCall", "Usage", "UsageTotals", "available_providers", "make_provider", "register_provider"]
