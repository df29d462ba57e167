"""GRPO environment adapter: generated tool methods, sandboxed calls, the composite reward per rollout."""

from __future__ import annotations

import inspect
import json
from types import SimpleNamespace

import pytest
from transformers.utils import get_json_schema

from envfactory.train.rewards import RewardConfig
from envfactory.train.rl import count_format_errors, make_reward_fn, row_tools
from envfactory.train.rl_env import environment_class
from envfactory.train.rows import MIN_DISTRACTORS, TrainView


def _env_for(row, packages, pool, max_tools=3):
    tools, routes = row_tools(row, packages, max_tools, seed=0)
    return environment_class(list(row["envs"]), tools, routes)(pool), tools


def _play_gold(env, row):
    for g in json.loads(row["gold_calls"]):
        getattr(env, g["name"])(**g["arguments"])


def test_methods_mirror_the_offered_tools(rl_train_setup):
    packages, rows, pool = rl_train_setup
    row = max(rows, key=lambda r: len(json.loads(r["gold_calls"])))
    env, tools = _env_for(row, packages, pool)
    gold = {g["name"] for g in json.loads(row["gold_calls"])}
    names = [t["function"]["name"] for t in tools]
    every = len(packages[row["envs"][0]].spec.tools)
    assert gold <= set(names) and len(names) == min(every, max(3, len(gold) + MIN_DISTRACTORS))
    for tool in tools:
        method = getattr(env, tool["function"]["name"])
        schema = get_json_schema(method)["function"]  # what TRL would derive: must not raise
        params = tool["function"]["parameters"]
        assert set(schema["parameters"]["properties"]) == set(params.get("properties", {}))
        assert set(schema["parameters"].get("required", [])) == set(params.get("required", []))
        assert schema["description"].startswith(tool["function"]["description"][:20])
    # tools the row does not offer are not methods (unknown to the model, as in evaluation)
    every = {t.name for e in row["envs"] for t in packages[e].spec.tools}
    assert not any(hasattr(env, n) for n in every - set(names))


def test_gold_replay_scores_one_and_idle_scores_zero(rl_train_setup):
    packages, rows, pool = rl_train_setup
    reward = make_reward_fn(RewardConfig())
    row = next(r for r in rows if len(json.loads(r["gold_calls"])) >= 2)
    gold_env, _ = _env_for(row, packages, pool)
    idle_env, _ = _env_for(row, packages, pool)
    gold_env.reset(**row)
    idle_env.reset(**row)
    _play_gold(gold_env, row)
    logged = {}
    state = SimpleNamespace(global_step=0, max_steps=4)
    r = reward([[{"role": "assistant", "content": "done"}]] * 2, [gold_env, idle_env], trainer_state=state,
               log_metric=lambda k, v: logged.__setitem__(k, v))
    assert r == [1.0, 0.0]
    assert logged["reward_trace"] == 0.5 and logged["reward_state"] == 0.5  # the mean over the two rollouts
    assert pool.created <= 2  # workers returned to the pool after scoring, not leaked


def test_bad_calls_return_structured_errors_and_do_not_raise(rl_train_setup):
    packages, rows, pool = rl_train_setup
    row = rows[0]
    env, tools = _env_for(row, packages, pool)
    env.reset(**row)
    name = tools[0]["function"]["name"]
    out = json.loads(getattr(env, name)(definitely_not_a_param=1))
    assert out["error"]["kind"] == "invalid_arguments"
    before = env._sessions[row["envs"][0]].state_hash()
    getattr(env, name)(**{p: {"nested": ["garbage"]} for p in tools[0]["function"]["parameters"].get("properties", {})})
    assert env._sessions[row["envs"][0]].state_hash() == before
    env.outcome()


def test_tool_output_is_cut_to_the_token_budget(rl_train_setup):
    from transformers import AutoTokenizer

    from envfactory.default_model import resolve_model_path

    packages, rows, pool = rl_train_setup
    tok = AutoTokenizer.from_pretrained(resolve_model_path("smollm2-135m"))
    row = next(r for r in rows if any(g["tool"].startswith(("search", "list")) for g in json.loads(r["gold_calls"])))
    tools, routes = row_tools(row, packages, 3, seed=0)
    env = environment_class(list(row["envs"]), tools, routes)(pool, tok, TrainView(max_tool_tokens=16))
    env.reset(**row)
    g = next(g for g in json.loads(row["gold_calls"]) if g["tool"].startswith(("search", "list")))
    text = getattr(env, g["name"])(**g["arguments"])
    assert "[truncated" in text and len(tok(text)["input_ids"]) < 40
    env.outcome()


def test_unparsed_tool_calls_count_as_format_errors():
    assert count_format_errors([{"role": "assistant", "content": '<tool_call>{"name": broken</tool_call>'},
                                {"role": "tool", "content": "<tool_call>"}]) == 1
    assert count_format_errors([{"role": "assistant", "content": "", "tool_calls": [{"function": {}}]}]) == 0


def test_generated_signature_rejects_reserved_names(rl_train_setup):
    bad = [{"type": "function", "function": {"name": "reset", "description": "x", "parameters": {}}}]
    with pytest.raises(ValueError):
        environment_class(["x"], bad, {"reset": ("x", "reset")})
    ok = environment_class(["x"], [{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object", "properties": {
            "a": {"type": "integer", "description": "A."}, "b": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
            "required": ["a"]}}}], {"f": ("x", "f")})
    sig = inspect.signature(ok.f)
    assert sig.parameters["a"].annotation is int and sig.parameters["b"].default is None
