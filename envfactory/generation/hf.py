"""transformers' `generate`, one request at a time under a lock: the reference path (and the GPU fallback)."""

from __future__ import annotations

import threading

from .engine import Generated, GenerationRequest


class TransformersEngine:
    name = "transformers"

    def __init__(self, model_dir: str, workers: int = 1):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir)
        self.model.eval()
        self._lock = threading.Lock()  # one model, one request at a time: concurrent callers queue here

    def generate(self, req: GenerationRequest) -> Generated:
        import torch

        gen = {"max_new_tokens": req.max_new_tokens, "do_sample": req.temperature > 0,
               "pad_token_id": self.tokenizer.eos_token_id}
        if req.temperature > 0:
            gen["temperature"] = req.temperature
            gen.update({k: v for k, v in (("top_k", req.top_k), ("top_p", req.top_p)) if v is not None})
        with self._lock, torch.no_grad():
            if req.temperature > 0 and req.seed is not None:
                torch.manual_seed(req.seed)
            out = self.model.generate(torch.tensor([req.prompt_ids]), attention_mask=torch.ones(1, len(req.prompt_ids),
                                      dtype=torch.long), **gen)
        new = out[0][len(req.prompt_ids):].tolist()
        stops = stop_ids(self.model.generation_config, self.tokenizer)
        if new and new[-1] in stops:
            return Generated(ids=new[:-1], finish_reason="stop", stop_token=new[-1])
        return Generated(ids=new, finish_reason="length" if len(new) >= req.max_new_tokens else "stop")


def stop_ids(generation_config, tokenizer) -> set[int]:
    """The ids `generate` stops at: the generation config's eos ids plus the tokenizer's."""
    eos = generation_config.eos_token_id if generation_config is not None else None
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids
