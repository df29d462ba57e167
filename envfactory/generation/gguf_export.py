"""Export a Llama-architecture transformers checkpoint to GGUF, so llama.cpp can serve a trained stage.

Written with the `gguf` package (its tensor-name map and writer). Two facts of the format matter:
- llama.cpp applies RoPE to interleaved pairs while transformers rotates halves, so Q and K rows are permuted
  (the same permutation llama.cpp's own converter applies);
- the vocabulary is written for llama.cpp to load, but the engine feeds token ids produced by the checkpoint's
  own tokenizer and chat template, so prompts and decoding are exactly those of the transformers path.
The file is content-addressed by the weights fingerprint: a model retrained in place gets a new export.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_path, cache_root

SUPPORTED = ("LlamaForCausalLM",)
EXPORT_VERSION = 1  # part of the cache key: a fixed exporter never serves files the old one wrote


class ExportError(RuntimeError):
    pass


def _permute(w, n_head: int):
    # rotate-half (transformers) -> interleaved (GGML) row order of a Q or K projection
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def export_gguf(model_dir: str | Path, out: Path, dtype: str = "f32", state: dict | None = None) -> Path:
    """`state`: tensors to write instead of `model_dir`'s safetensors (a live model's state_dict: GRPO exports
    the policy it is training, with `model_dir`'s config and tokenizer)."""
    import gguf
    import numpy as np
    import torch
    from transformers import AutoConfig

    model_dir = Path(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    arch = (config.architectures or ["?"])[0]
    if arch not in SUPPORTED:
        raise ExportError(f"the llama_cpp engine exports {', '.join(SUPPORTED)} checkpoints, not {arch}; "
                          "use engine: transformers (CPU/GPU) or vllm (GPU) for this model")
    if state is None:
        state = _load_safetensors(model_dir)
    n_layer, n_head = config.num_hidden_layers, config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_head
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_head
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, n_layer)
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16}[dtype]

    with atomic_path(out) as tmp:
        w = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
        w.add_name(model_dir.name)
        w.add_context_length(config.max_position_embeddings)
        w.add_embedding_length(config.hidden_size)
        w.add_block_count(n_layer)
        w.add_feed_forward_length(config.intermediate_size)
        w.add_head_count(n_head)
        w.add_head_count_kv(n_kv)
        w.add_rope_dimension_count(head_dim)
        w.add_rope_freq_base(float(getattr(config, "rope_theta", None)
                                   or (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)))
        w.add_layer_norm_rms_eps(config.rms_norm_eps)
        w.add_vocab_size(config.vocab_size)
        w.add_file_type(ftype)
        _add_vocab(w, model_dir, config.vocab_size)
        for name, tensor in state.items():
            if name.endswith("rotary_emb.inv_freq"):
                continue
            if name == "lm_head.weight" and getattr(config, "tie_word_embeddings", False):
                continue  # tied: llama.cpp reuses token_embd
            data = tensor.detach().to(torch.float32).numpy()
            if name.endswith("q_proj.weight"):
                data = _permute(data, n_head)
            elif name.endswith("k_proj.weight"):
                data = _permute(data, n_kv)
            new = names.get_name(name, try_suffixes=(".weight", ".bias"))
            if new is None:
                raise ExportError(f"no GGUF name for tensor {name!r}")
            if dtype == "f16" and data.ndim == 2:  # norms and 1-D tensors stay f32, as llama.cpp expects
                data = data.astype(np.float16)
            w.add_tensor(new, np.ascontiguousarray(data))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return out


def _load_safetensors(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    shards = sorted(model_dir.glob("*.safetensors"))
    if not shards:
        raise ExportError(f"no *.safetensors in {model_dir}")
    state: dict = {}
    for shard in shards:
        state.update(load_file(str(shard)))
    return state


def _add_vocab(w, model_dir: Path, vocab_size: int) -> None:
    import gguf
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    special = set(tok.all_special_ids) | {i for i, t in tok.added_tokens_decoder.items() if t.special}
    tokens, types = [], []
    for i in range(vocab_size):
        piece = tok.convert_ids_to_tokens(i) if i < len(tok) else None
        if piece is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(piece)
            types.append(gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size).add_to_gguf(w, quiet=True)


def gguf_for(model_dir: str | Path, dtype: str = "f32") -> Path:
    """The GGUF export of a checkpoint, made once per (weights fingerprint, dtype, exporter version)."""
    from ..default_model import weights_fingerprint

    fingerprint = weights_fingerprint(str(model_dir))
    out = cache_root() / "gguf" / f"{fingerprint[:24]}-{dtype}-v{EXPORT_VERSION}.gguf"
    if not out.is_file():
        export_gguf(model_dir, out, dtype)
    return out


def describe(path: Path) -> dict:
    """Header facts of an exported file (tests and the benchmark print them)."""
    import gguf

    r = gguf.GGUFReader(str(path))
    return {"tensors": len(r.tensors), "bytes": path.stat().st_size,
            "fields": json.loads(json.dumps(sorted(r.fields)))}
