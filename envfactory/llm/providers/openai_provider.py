"""OpenAI chat completions, and any OpenAI-compatible server (vLLM, SGLang, llama.cpp) via `base_url`.

Retries with exponential backoff on timeouts, 429 and 5xx are the SDK's own (`max_retries`).
"""

from __future__ import annotations

import json

from ..registry import ProviderConfig, register_provider
from ..types import ChatRequest, ChatResponse, Message, ToolCall, Usage
from ._common import api_key, cost, parse_json_arguments


def to_openai_messages(messages: list[Message]) -> list[dict]:
    out = []
    for m in messages:
        d: dict = {"role": m.role, "content": m.content}
        if m.tool_calls:
            d["tool_calls"] = [{"id": c.id or f"call_{i}", "type": "function",
                                "function": {"name": c.name, "arguments": c.arguments if isinstance(c.arguments, str)
                                             else json.dumps(c.arguments)}} for i, c in enumerate(m.tool_calls)]
        if m.role == "tool":
            d["tool_call_id"] = m.tool_call_id or ""
        out.append(d)
    return out


@register_provider("openai")
class OpenAIProvider:
    def __init__(self, cfg: ProviderConfig):
        import openai

        self.cfg = cfg
        # A local OpenAI-compatible server usually needs no key; the hosted API does.
        key = api_key(cfg, "OPENAI_API_KEY", required=cfg.base_url is None) or "EMPTY"
        self.client = openai.OpenAI(api_key=key, base_url=cfg.base_url, timeout=cfg.timeout_s,
                                    max_retries=cfg.max_retries)

    def complete(self, request: ChatRequest) -> ChatResponse:
        kwargs: dict = {"model": request.model, "messages": to_openai_messages(request.messages),
                        "temperature": request.temperature, "max_tokens": request.max_tokens}
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.tools:
            kwargs["tools"] = request.tools
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": "output", "schema": request.json_schema}}
        resp = self.client.chat.completions.create(**kwargs, **self.cfg.options)
        choice = resp.choices[0]
        calls = [ToolCall(id=c.id, name=c.function.name, arguments=parse_json_arguments(c.function.arguments))
                 for c in (choice.message.tool_calls or [])]
        usage = Usage(prompt_tokens=getattr(resp.usage, "prompt_tokens", 0) or 0,
                      completion_tokens=getattr(resp.usage, "completion_tokens", 0) or 0)
        return ChatResponse(content=choice.message.content or "", tool_calls=calls, usage=usage,
                            cost_usd=cost(self.cfg, usage.prompt_tokens, usage.completion_tokens),
                            model=resp.model or request.model, finish_reason=choice.finish_reason or "")
