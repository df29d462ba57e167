"""A transformers model in-process (CPU or GPU), using the Qwen3-style tool-call format."""

from __future__ import annotations

import threading
from functools import lru_cache

from ...agent.toolcall import parse_tool_calls
from ..registry import ProviderConfig, register_provider
from ..types import ChatRequest, ChatResponse, ToolCall, Usage
from ._common import json_instruction

_lock = threading.Lock()


@lru_cache(maxsize=2)
def _load(path: str, fingerprint: str):  # keyed by the weights too: a model retrained in place is reloaded
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ...default_model import resolve_model_path

    resolved = resolve_model_path(path)
    tokenizer = AutoTokenizer.from_pretrained(resolved)
    model = AutoModelForCausalLM.from_pretrained(resolved)
    model.eval()
    return tokenizer, model


def _as_template_messages(request: ChatRequest) -> list[dict]:
    msgs = []
    for m in request.messages:
        d = {"role": m.role, "content": m.content}
        if m.tool_calls:
            d["tool_calls"] = [{"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                               for c in m.tool_calls]
        msgs.append(d)
    if request.json_schema is not None:
        instruction = json_instruction(request.json_schema)
        if msgs and msgs[0]["role"] == "system":
            msgs[0] = {**msgs[0], "content": msgs[0]["content"] + "\n\n" + instruction}
        else:
            msgs.insert(0, {"role": "system", "content": instruction})
    return msgs


@register_provider("local")
class LocalProvider:
    def __init__(self, cfg: ProviderConfig):
        self.cfg = cfg

    @staticmethod
    def cache_identity(cfg: ProviderConfig, request: ChatRequest) -> str:
        """Cache keys name the weights, not just the path: a retrained model is never served old answers."""
        from ...default_model import weights_fingerprint

        return "weights:" + weights_fingerprint(request.model or cfg.model)

    def complete(self, request: ChatRequest) -> ChatResponse:
        import torch

        from ...default_model import weights_fingerprint

        path = request.model or self.cfg.model
        tokenizer, model = _load(path, weights_fingerprint(path))
        enc = tokenizer.apply_chat_template(_as_template_messages(request), tools=request.tools or None,
                                            add_generation_prompt=True, return_tensors="pt", return_dict=True)
        gen = {"max_new_tokens": min(request.max_tokens, int(self.cfg.options.get("max_new_tokens", 1024))),
               "do_sample": request.temperature > 0, "pad_token_id": tokenizer.eos_token_id}
        if request.temperature > 0:
            gen["temperature"] = request.temperature
            if request.seed is not None:
                torch.manual_seed(request.seed)
        with _lock, torch.no_grad():
            out = model.generate(**enc, **gen)
        new = out[0][enc["input_ids"].shape[1]:]
        text = tokenizer.decode(new, skip_special_tokens=True)
        content, parsed = parse_tool_calls(text)
        calls = [ToolCall(id=f"call_{i}", name=c.name, arguments=c.arguments if c.error is None else c.raw)
                 for i, c in enumerate(parsed)]
        finish = "length" if len(new) >= gen["max_new_tokens"] else "stop"
        return ChatResponse(content=content, tool_calls=calls, model=request.model or self.cfg.model,
                            usage=Usage(prompt_tokens=int(enc["input_ids"].shape[1]), completion_tokens=len(new)),
                            finish_reason=finish)
