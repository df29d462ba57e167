"""A checkpoint in-process: its own chat template, Qwen3-style tool-call parsing, generation by an engine
(`envfactory/generation`: transformers, or llama.cpp over a GGUF export; options `engine`, `workers`)."""

from __future__ import annotations

import threading
from functools import lru_cache

from ..registry import register_provider
from ..toolcall import parse_tool_calls
from ..types import ChatRequest, ChatResponse, ProviderConfig, ToolCall, Usage
from ._common import json_instruction

_tokenizer_lock = threading.Lock()


def _tokenizer(path: str, fingerprint: str):
    # One loader at a time: episodes run in threads, and transformers' lazy first import is not thread-safe
    # (concurrent `from transformers import AutoTokenizer` raised ImportError in VitaBench's first trials).
    with _tokenizer_lock:
        return _load_tokenizer(path, fingerprint)


@lru_cache(maxsize=4)
def _load_tokenizer(path: str, fingerprint: str):  # keyed by the weights too: a model retrained in place is reloaded
    from transformers import AutoTokenizer

    from ...default_model import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path(path))


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
        from ...default_model import weights_fingerprint
        from ...generation.engine import GenerationRequest, get_engine

        path = request.model or self.cfg.model
        tokenizer = _tokenizer(path, weights_fingerprint(path))
        prompt = tokenizer.apply_chat_template(_as_template_messages(request), tools=request.tools or None,
                                               add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        engine = get_engine(str(self.cfg.options.get("engine", "transformers")), path,
                            int(self.cfg.options.get("workers", 1)))
        out = engine.generate(GenerationRequest(
            prompt_ids=list(prompt), temperature=request.temperature, seed=request.seed,
            max_new_tokens=min(request.max_tokens, int(self.cfg.options.get("max_new_tokens", 1024)))))
        text = tokenizer.decode(out.ids, skip_special_tokens=True)
        content, parsed = parse_tool_calls(text)
        calls = [ToolCall(id=f"call_{i}", name=c.name, arguments=c.arguments if c.error is None else c.raw)
                 for i, c in enumerate(parsed)]
        return ChatResponse(content=content, tool_calls=calls, model=path,
                            usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(out.ids)),
                            finish_reason=out.finish_reason)
