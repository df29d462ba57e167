"""GRPO rollouts by the engine (`train/rl_rollout.py`): the tool loop on token ids, masks, budgets, weight sync.

The loop is driven by a scripted engine (the texts a policy would generate) against real sandboxed environments
and the default model's real chat template; the weight sync is checked on the real export.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from envfactory.generation.engine import Generated
from envfactory.llm.toolcall import render_tool_call
from envfactory.train.rewards import RewardConfig
from envfactory.train.rl import make_reward_fn, row_tools
from envfactory.train.rl_env import environment_class
from envfactory.train.rl_rollout import EngineRollouts, PolicySnapshot, tool_suffix_ids
from envfactory.train.rows import TrainView


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from envfactory.default_model import prepare_default_model

    return AutoTokenizer.from_pretrained(prepare_default_model())


class ScriptedEngine:
    """Generates the given texts in turn (each ended by the stop token), recording every request."""

    def __init__(self, tokenizer, texts: list[str]):
        self.tok, self.texts, self.requests = tokenizer, list(texts), []

    def generate(self, req):
        self.requests.append(req)
        ids = self.tok(self.texts.pop(0), add_special_tokens=False)["input_ids"]
        if len(ids) >= req.max_new_tokens:
            return Generated(ids=ids[:req.max_new_tokens], finish_reason="length")
        return Generated(ids=ids, finish_reason="stop", stop_token=self.tok.eos_token_id)


def _rollouts(rl_train_setup, tokenizer, row, max_completion_length=1024, max_turns=2):
    packages, _, pool = rl_train_setup
    tools, routes = row_tools(row, packages, 3, seed=0)
    name = row["chain_id"]
    cls = environment_class(list(row["envs"]), tools, routes)
    return EngineRollouts(snapshot=None, tokenizer=tokenizer, environments={name: cls}, tools={name: tools},
                          pool=pool, view=TrainView(max_tool_tokens=96), max_completion_length=max_completion_length,
                          max_turns=max_turns, temperature=1.0, concurrency=2, seed=0)


def _record(row):
    return {"environment": row["chain_id"], "scenarios": row["scenarios"], "gold_calls": row["gold_calls"],
            "expected_state_hash": row["expected_state_hash"]}


def _prompt(row):
    return [{"role": m["role"], "content": m["content"] or ""} for m in row["prompt"]]


def _single_call_row(rows):
    return next(r for r in rows if len(json.loads(r["gold_calls"])) == 1)


def test_tool_suffix_joins_turns_exactly_as_the_template_renders_them(tokenizer):
    """prompt + generated call + end token + suffix must be the template's own rendering of the conversation:
    otherwise the policy is trained on token sequences it never sees at evaluation."""
    tools = [{"type": "function", "function": {"name": "find_movie", "description": "Find a movie.",
                                               "parameters": {"type": "object", "properties": {
                                                   "title": {"type": "string"}}, "required": ["title"]}}}]
    user = [{"role": "user", "content": "Find Alien."}]
    call = {"type": "function", "function": {"name": "find_movie", "arguments": {"title": "Alien"}}}
    tool_msg = {"role": "tool", "name": "find_movie", "content": '{"id": "M1"}'}
    full = [*user, {"role": "assistant", "content": "", "tool_calls": [call]}, tool_msg]

    def ids(conv, gen):
        return tokenizer.apply_chat_template(conv, tools=tools, add_generation_prompt=gen, tokenize=True,
                                             return_dict=True)["input_ids"]

    prompt = ids(user, True)
    generated = tokenizer(render_tool_call("find_movie", {"title": "Alien"}), add_special_tokens=False)["input_ids"]
    suffix = tool_suffix_ids(tokenizer, [tool_msg], tokenizer.eos_token_id)
    assert list(prompt) + generated + [tokenizer.eos_token_id] + suffix == list(ids(full, True))
    assert tokenizer.decode(suffix).rstrip().endswith("assistant")  # it opens the next assistant turn


def test_gold_call_is_executed_masked_and_scored(rl_train_setup, tokenizer):
    _, rows, pool = rl_train_setup
    row = _single_call_row(rows)
    gold = json.loads(row["gold_calls"])[0]
    r = _rollouts(rl_train_setup, tokenizer, row)
    engine = ScriptedEngine(tokenizer, [render_tool_call(gold["name"], gold["arguments"]), "It is done."])
    out = r.rollout(engine, _prompt(row), _record(row), seed=1)
    first, second = engine.requests
    assert second.prompt_ids[:len(first.prompt_ids)] == first.prompt_ids == out["prompt_ids"]
    assert second.prompt_ids == out["prompt_ids"] + out["completion_ids"][:len(second.prompt_ids)
                                                                          - len(out["prompt_ids"])]
    mask = out["env_mask"]
    assert len(mask) == len(out["completion_ids"]) and mask[0] == 1 and mask[-1] == 1 and 0 in mask
    # the masked span is exactly the tool turn, and it holds the environment's answer
    start, end = mask.index(0), len(mask) - mask[::-1].index(0)
    assert set(mask[start:end]) == {0}
    span = tokenizer.decode(out["completion_ids"][start:end])
    assert span.startswith("\n<|im_start|>user\n<tool_response>\n{") and span.endswith("<|im_start|>assistant\n")
    assert first.top_k == 0 and first.top_p == 1.0 and first.temperature == 1.0  # the policy's full distribution
    outcome = out["outcome"]
    assert [(c[1], c[2]) for c in outcome.predicted_calls] == [(gold["tool"], gold["arguments"])]
    reward = make_reward_fn(RewardConfig())
    state = SimpleNamespace(global_step=0, max_steps=4)
    assert reward([[{"role": "assistant", "content": ""}]], outcome=[outcome], trainer_state=state) == [1.0]


def test_a_tool_result_past_the_budget_ends_the_rollout(rl_train_setup, tokenizer):
    _, rows, _ = rl_train_setup
    row = _single_call_row(rows)
    gold = json.loads(row["gold_calls"])[0]
    text = render_tool_call(gold["name"], gold["arguments"])
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1  # the call and its end token, no more
    engine = ScriptedEngine(tokenizer, [text, "never generated"])
    rollouts = _rollouts(rl_train_setup, tokenizer, row, max_completion_length=n + 3)
    out = rollouts.rollout(engine, _prompt(row), _record(row), 2)
    assert len(engine.requests) == 1 and out["env_mask"] == [1] * n and len(out["completion_ids"]) == n
    assert len(out["outcome"].predicted_calls) == 1  # executed, as in TRL's loop; only its result is dropped


def test_unknown_tools_and_malformed_calls_are_errors_not_calls(rl_train_setup, tokenizer):
    _, rows, pool = rl_train_setup
    row = _single_call_row(rows)
    engine = ScriptedEngine(tokenizer, [render_tool_call("no_such_tool", {}) + "\n<tool_call>\n{broken\n</tool_call>",
                                        "Sorry."])
    idle = sum(len(v) for v in pool._idle.values())
    out = _rollouts(rl_train_setup, tokenizer, row).rollout(engine, _prompt(row), _record(row), 3)
    assert out["outcome"].predicted_calls == [] and out["outcome"].format_errors == 1
    assert "unknown_tool" in tokenizer.decode(out["completion_ids"])
    assert sum(len(v) for v in pool._idle.values()) >= idle  # sandbox workers given back
    reward = make_reward_fn(RewardConfig())
    assert reward([[{}]], outcome=[out["outcome"]], trainer_state=None) == [0.0]


def test_a_batch_keeps_the_order_of_its_rows(rl_train_setup, tokenizer):
    _, rows, _ = rl_train_setup
    row = _single_call_row(rows)
    gold = json.loads(row["gold_calls"])[0]
    r = _rollouts(rl_train_setup, tokenizer, row)
    texts = [render_tool_call(gold["name"], gold["arguments"]), "ok", "I cannot help.", "I cannot help."]
    engine = ScriptedEngine(tokenizer, texts)
    r.snapshot = SimpleNamespace(engine_for=lambda trainer: (engine, 0.0))
    r.concurrency = 1  # scripted texts are consumed in order
    trainer = SimpleNamespace(_rollout_rows=[_record(row)] * 2, state=SimpleNamespace(global_step=3))
    out = r([_prompt(row)] * 2, trainer)
    assert set(out) == {"prompt_ids", "completion_ids", "logprobs", "env_mask", "outcome"}
    assert out["logprobs"] is None  # on-policy: no sampling logprobs are claimed
    assert [len(o.predicted_calls) for o in out["outcome"]] == [1, 0]
    # seeds follow the optimizer step (a resumed run draws the same rollouts), distinct per rollout and turn
    seeds = [q.seed for q in engine.requests]
    assert len(set(seeds)) == len(seeds) == 3
    engine.texts, engine.requests = list(texts), []
    r([_prompt(row)] * 2, trainer)
    assert [q.seed for q in engine.requests] == seeds
    with pytest.raises(RuntimeError, match="2 rows"):
        r([_prompt(row)], trainer)


def _tensors(path) -> dict[str, bytes]:
    import gguf

    return {t.name: bytes(t.data.tobytes()) for t in gguf.GGUFReader(str(path)).tensors}


@pytest.mark.slow
def test_policy_snapshot_exports_the_live_weights_once_per_step(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from envfactory.default_model import prepare_default_model
    from envfactory.generation.gguf_export import gguf_for

    path = prepare_default_model()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=0), model=model,
                              accelerator=SimpleNamespace(unwrap_model=lambda m: m))
    snap = PolicySnapshot(str(path), tmp_path, workers=1)
    try:
        engine, _ = snap.engine_for(trainer)
        saved = _tensors(gguf_for(path))
        assert _tensors(snap.path) == saved  # the live weights = the saved ones
        assert snap.engine_for(trainer)[0] is engine and snap.exports == 1  # same step: no re-export
        with torch.no_grad():
            model.model.norm.weight.mul_(1.5)  # an optimizer step
        trainer.state.global_step = 1
        assert snap.engine_for(trainer)[0] is not engine and snap.exports == 2
        changed = {k for k, v in _tensors(snap.path).items() if v != saved[k]}
        assert changed == {"output_norm.weight"}
    finally:
        snap.close(remove=True)
    assert not snap.path.exists()
