"""llama.cpp (llama-cpp-python) over a GGUF export of the checkpoint: the fast CPU engine.

What makes it fast on a small CPU is not batching (prefill of ~1,000-token tool prompts does not batch well)
but not paying prefill twice: each context keeps the KV cache of the last sequence it ran, and `Llama.generate`
recomputes only the tokens after the longest common prefix. A request goes to the free context whose kept
tokens share the longest prefix with its prompt, so an episode's next turn lands where its history is cached,
and tasks of one environment share their system prompt and tool schemas. Contexts run in parallel (the
bindings release the GIL inside llama.cpp), `workers` of them, the CPU's threads split between them.
"""

from __future__ import annotations

import os
import threading

from .engine import EngineError, Generated, GenerationRequest


def _common_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class LlamaCppEngine:
    name = "llama_cpp"

    def __init__(self, model_dir: str, workers: int = 1, n_ctx: int | None = None, dtype: str = "f32",
                 gguf: str | None = None):
        """`gguf`: an exported file to serve instead of the cached export of `model_dir`'s weights (RL exports
        the live policy; `model_dir` still gives the tokenizer, config and stop ids)."""
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise EngineError("engine llama_cpp needs llama-cpp-python (pip install -e '.[cpu-engine]')") from exc
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig

        from .gguf_export import gguf_for
        from .hf import stop_ids

        path = gguf or gguf_for(model_dir, dtype)
        config = AutoConfig.from_pretrained(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        try:
            generation_config = GenerationConfig.from_pretrained(model_dir)
        except OSError:
            generation_config = None
        self.stops = stop_ids(generation_config, tokenizer)
        self.top_k = int(getattr(generation_config, "top_k", None) or 50)  # sampling defaults of `generate`
        self.top_p = float(getattr(generation_config, "top_p", None) or 1.0)
        self.n_ctx = n_ctx or min(int(config.max_position_embeddings), 8192)
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        self._contexts = [Llama(model_path=str(path), n_ctx=self.n_ctx, n_batch=512, n_threads=threads,
                                n_threads_batch=threads, verbose=False) for _ in range(max(1, workers))]
        self._free = list(range(len(self._contexts)))
        self._cond = threading.Condition()

    def _acquire(self, prompt: list[int]) -> int:
        with self._cond:
            while not self._free:
                self._cond.wait()
            best = max(self._free, key=lambda i: _common_prefix(self._kept(i), prompt))
            self._free.remove(best)
            return best

    def _kept(self, i: int):
        llm = self._contexts[i]
        return llm.input_ids[:llm.n_tokens]

    def _release(self, i: int) -> None:
        with self._cond:
            self._free.append(i)
            self._cond.notify()

    def close(self) -> None:
        """Free the contexts now: left to interpreter shutdown, llama-cpp-python's finalizers hit torn-down modules."""
        for llm in self._contexts:
            llm.close()
        self._contexts = []

    def generate(self, req: GenerationRequest) -> Generated:
        if len(req.prompt_ids) + req.max_new_tokens > self.n_ctx:
            raise EngineError(f"prompt of {len(req.prompt_ids)} tokens + {req.max_new_tokens} new exceeds the "
                              f"context of {self.n_ctx}")
        i = self._acquire(req.prompt_ids)
        try:
            llm = self._contexts[i]
            cached = _common_prefix(self._kept(i), req.prompt_ids)
            if req.temperature > 0:
                llm.set_seed(req.seed if req.seed is not None else 0)
                sampling = {"temp": req.temperature, "min_p": 0.0,
                            "top_k": self.top_k if req.top_k is None else req.top_k,
                            "top_p": self.top_p if req.top_p is None else req.top_p}
            else:
                sampling = {"temp": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0}
            new: list[int] = []
            finish, stop_token = "length", None
            for token in llm.generate(req.prompt_ids, repeat_penalty=1.0, **sampling):
                if token in self.stops:
                    finish, stop_token = "stop", token
                    break
                new.append(token)
                if len(new) >= req.max_new_tokens:
                    break
            return Generated(ids=new, finish_reason=finish, cached_prompt_tokens=cached, stop_token=stop_token)
        finally:
            self._release(i)
