"""Anthropic Messages API. Retries/backoff on 429/5xx/timeouts are the SDK's own (`max_retries`)."""

from __future__ import annotations

from ..registry import register_provider
from ..types import ChatRequest, ChatResponse, Message, ProviderConfig, ToolCall, Usage
from ._common import api_key, cost


def to_anthropic(messages: list[Message]) -> tuple[str, list[dict]]:
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out: list[dict] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list) \
                    and out[-1]["content"] and out[-1]["content"][0].get("type") == "tool_result":
                out[-1]["content"].append(block)  # consecutive tool results go in one user turn
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if m.role == "assistant" and m.tool_calls:
            blocks = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [{"type": "tool_use", "id": c.id or f"toolu_{i}", "name": c.name,
                        "input": c.arguments if isinstance(c.arguments, dict) else {}}
                       for i, c in enumerate(m.tool_calls)]
            out.append({"role": "assistant", "content": blocks})
            continue
        out.append({"role": m.role, "content": m.content})
    return system, out


@register_provider("anthropic")
class AnthropicProvider:
    def __init__(self, cfg: ProviderConfig):
        import anthropic

        self.cfg = cfg
        self.client = anthropic.Anthropic(api_key=api_key(cfg, "ANTHROPIC_API_KEY"), base_url=cfg.base_url,
                                          timeout=cfg.timeout_s, max_retries=cfg.max_retries)

    def complete(self, request: ChatRequest) -> ChatResponse:
        system, messages = to_anthropic(request.messages)
        # The current Messages API takes no sampling parameters; structured output is `output_config.format`.
        kwargs: dict = {"model": request.model, "messages": messages, "max_tokens": request.max_tokens}
        if request.json_schema is not None:
            kwargs["output_config"] = {"format": {"type": "json_schema", "schema": request.json_schema}}
        if system:
            kwargs["system"] = system
        if request.tools:
            kwargs["tools"] = [{"name": t["function"]["name"], "description": t["function"].get("description", ""),
                                "input_schema": t["function"].get("parameters", {"type": "object"})}
                               for t in request.tools]
        resp = self.client.messages.create(**kwargs, **self.cfg.options)
        text = "".join(b.text for b in resp.content if b.type == "text")
        calls = [ToolCall(id=b.id, name=b.name, arguments=dict(b.input)) for b in resp.content if b.type == "tool_use"]
        usage = Usage(prompt_tokens=resp.usage.input_tokens, completion_tokens=resp.usage.output_tokens)
        return ChatResponse(content=text, tool_calls=calls, usage=usage,
                            cost_usd=cost(self.cfg, usage.prompt_tokens, usage.completion_tokens),
                            model=resp.model, finish_reason=resp.stop_reason or "")
