"""Generation engines: one interface (token ids in, token ids out) behind every in-process model path.

`engine.py` holds the registry (a lazy name -> "module:Class" map); `hf.py` is transformers' `generate`, one
request at a time (the reference path, and the GPU fallback); `llamacpp.py` serves a GGUF export of the same
checkpoint (`gguf_export.py`) from a pool of llama.cpp contexts that keep each conversation's KV cache; `vllm.py`
builds and manages `vllm serve` for GPU runs.
"""
