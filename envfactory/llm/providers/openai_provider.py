"""OpenAI chat completions, and any OpenAI-compatible server (vLLM, SGLang, llama.cpp) via `base_url`.

Retries with exponential backoff on timeouts, 429 and 5xx are the SDK's own (`max_retries`).
"""

from __future__ import annotations

import json

from ..registry import register_provider
from ..types import ChatRequest, ChatResponse, Message, ProviderConfig, ToolCall, Usage
from ._common import LLMCallError, api_key, cost, parse_json_arguments

RETRIED_STATUS = (408, 409, 429)  # and every 5xx: what the SDK retries (besides timeouts and dropped connections)


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
        import openai

        where = f"openai-compatible chat completion (model {request.model!r} at {self.client.base_url})"
        try:
            resp = self.client.chat.completions.create(**kwargs, **self.cfg.options)
        except openai.APIError as exc:
            status = getattr(exc, "status_code", None)
            retried = status is None or status in RETRIED_STATUS or status >= 500
            tries = (f"after {1 + self.cfg.max_retries} attempts (max_retries={self.cfg.max_retries})" if retried
                     else "not retried")
            raise LLMCallError(f"{where} failed {tries}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # a 200 whose body is not JSON: cut off by a proxy or a crashing server
            raise LLMCallError(f"{where}: the answer is not valid JSON (truncated?): {exc}") from exc
        try:
            choice = resp.choices[0]
            calls = [ToolCall(id=c.id, name=c.function.name, arguments=parse_json_arguments(c.function.arguments))
                     for c in (choice.message.tool_calls or [])]
        except (AttributeError, IndexError, TypeError) as exc:
            raise LLMCallError(f"{where}: the answer is not a chat completion ({type(exc).__name__}: {exc}); "
                               f"got {str(resp)[:300]}") from exc
        usage = Usage(prompt_tokens=getattr(resp.usage, "prompt_tokens", 0) or 0,
                      completion_tokens=getattr(resp.usage, "completion_tokens", 0) or 0)
        return ChatResponse(content=choice.message.content or "", tool_calls=calls, usage=usage,
                            cost_usd=cost(self.cfg, usage.prompt_tokens, usage.completion_tokens),
                            model=resp.model or request.model, finish_reason=choice.finish_reason or "")
