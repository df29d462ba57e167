"""The policy a stage evaluates, as a provider: in-process through an engine, or a `vllm serve` endpoint.

Held-out evaluation and the benchmarks both take their policy from here, so one setting (`generation.engine`,
resolved from the model card) decides how every evaluation of a stage generates.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from ..llm.types import ProviderConfig


def local_provider(generation, model: str, max_new_tokens: int) -> ProviderConfig:
    """The in-process provider for a transformers or llama_cpp engine (`generation`: GenerationSettings)."""
    if generation.engine == "vllm":
        raise ValueError("engine vllm is served, not in-process: use served_policy()")
    return ProviderConfig(name="local", model=model,
                          options={"max_new_tokens": max_new_tokens, "engine": generation.engine or "transformers",
                                   "workers": generation.workers},
                          concurrency=generation.concurrency)


@contextlib.contextmanager
def served_policy(generation, model: str, max_new_tokens: int, log_path: Path, chat_template: str = "qwen3_tools",
                  max_model_len: int = 8192, seed: int = 0) -> Iterator[ProviderConfig]:
    """A provider for `model` valid inside the block; with engine vllm the server lives exactly that long."""
    if generation.engine != "vllm":
        yield local_provider(generation, model, max_new_tokens)
        return
    from ..agent.openai_server import _free_port
    from .vllm import VllmServeSpec, vllm_server

    # Served under the model's own path/id: BFCL's Qwen handler asks for exactly that name.
    spec = VllmServeSpec(model=model, served_name=model, port=_free_port(), seed=seed,
                         gpu_memory_utilization=generation.gpu_memory_utilization or 0.9,
                         max_model_len=max_model_len, chat_template=chat_template)
    with vllm_server(spec, log_path) as url:
        yield ProviderConfig(name="openai", model=model, base_url=url, engine="vllm",
                             concurrency=generation.concurrency)
