"""The agent loop and teacher rollouts with scripted LLMs: kept when they match gold, filtered otherwise."""

from __future__ import annotations

import random

import pytest

from envfactory.agent.loop import STOP, run_episode
from envfactory.agent.matching import call_matches, matched_gold
from envfactory.catalog import CATALOG_DIR
from envfactory.env.package import EnvPackage
from envfactory.env.sandbox import SandboxedEnv
from envfactory.graph.build import build_graph
from envfactory.graph.fields import value_pools
from envfactory.graph.sampler import SamplerConfig, TopologySampler, ValueSource
from envfactory.llm import LLMClient, Message, ProviderConfig, ToolCall
from envfactory.llm.providers.scripted import ScriptedProvider
from envfactory.querygen.execute import ChainExecutor, ExecutedChain
from envfactory.querygen.query import make_query
from envfactory.querygen.rollouts import offered_tools, teacher_trajectory

PKG = EnvPackage(CATALOG_DIR / "hotel_reservations")
SPECS = {"hotel_reservations": PKG.spec}


@pytest.fixture(scope="module")
def chain() -> ExecutedChain:
    g = build_graph([PKG.spec])
    values = {("hotel_reservations", s): ValueSource(value_pools(PKG.scenario(s))) for s in PKG.scenario_ids()}
    sampler = TopologySampler(g, values, SamplerConfig(), seed=5)
    ex = ChainExecutor({"hotel_reservations": PKG})
    try:
        for _ in range(60):
            c = sampler.sample("hotel_reservations.create_reservation", {})
            r = ex.run(c) if c else None
            if isinstance(r, ExecutedChain) and r.length >= 2:
                return r
    finally:
        ex.close()
    pytest.fail("no multi-step chain")


def scripted(fn) -> LLMClient:
    cfg = ProviderConfig(name="scripted", model="teacher")
    return LLMClient(cfg, None, "off", provider=ScriptedProvider(cfg, fn))


def replaying(calls, mutate=None):
    """A teacher that issues the given calls one per turn, then answers."""
    def act(request):
        done = sum(1 for m in request.messages if m.role == "tool")
        if done < len(calls):
            c = calls[done]
            args = mutate(dict(c.arguments)) if mutate and done == len(calls) - 1 else c.arguments
            return {"tool_calls": [ToolCall(id=f"t{done}", name=c.tool, arguments=args).model_dump()]}
        return {"content": "All set."}
    return act


def test_teacher_that_matches_gold_is_kept(chain):
    query = make_query(chain, SPECS, 1, random.Random(0), None, True)
    with SandboxedEnv(PKG) as env:
        rec, kept = teacher_trajectory(chain, query, SPECS, {"hotel_reservations": env},
                                       scripted(replaying(chain.calls)), "train", max_turns=10)
    assert kept and rec.matched and rec.source == "teacher"
    assert rec.final_state_hash == chain.final_state_hash
    assert [m["role"] for m in rec.messages][:2] == ["system", "user"]


def test_teacher_with_a_wrong_argument_is_filtered(chain):
    query = make_query(chain, SPECS, 1, random.Random(0), None, True)

    def wrong(args):
        args["nights"] = args.get("nights", 1) + 1
        return args

    with SandboxedEnv(PKG) as env:
        rec, kept = teacher_trajectory(chain, query, SPECS, {"hotel_reservations": env},
                                       scripted(replaying(chain.calls, wrong)), "train", max_turns=10)
    assert not kept and not rec.matched


def test_malformed_calls_are_format_errors_not_crashes():
    tools, routes = offered_tools(SPECS, ["hotel_reservations"])
    turns = iter([Message(role="assistant", tool_calls=[ToolCall(id="x", name="get_hotel", arguments="{oops")]),
                  Message(role="assistant", tool_calls=[ToolCall(id="y", name="no_such_tool", arguments={})]),
                  Message(role="assistant", content="Sorry.")])
    with SandboxedEnv(PKG) as env:
        env.reset("spring_iberia")
        ep = run_episode(lambda m, t: next(turns), {"hotel_reservations": env}, routes, tools,
                         [Message(role="user", content="hi")], max_turns=5)
    assert ep.format_errors == 1 and ep.stopped_by == "assistant"
    tool_msgs = [m.content for m in ep.messages if m.role == "tool"]
    assert "format_error" in tool_msgs[0] and "unknown_tool" in tool_msgs[1]


def test_conversational_rollout_with_a_user_simulator(chain):
    query = make_query(chain, SPECS, 2, random.Random(0), None, True)
    said = []

    def user(request):
        said.append(request.metadata["step"])
        return {"content": query.refined if request.metadata["step"] == "user_sim_open" else STOP}

    teacher_calls = replaying(chain.calls)
    with SandboxedEnv(PKG) as env:
        rec, kept = teacher_trajectory(chain, query, SPECS, {"hotel_reservations": env}, scripted(teacher_calls),
                                       "train", max_turns=10, user_sim=scripted(user))
    assert said == ["user_sim_open", "user_sim"] and kept


def test_call_matching_rules():
    gold = [("e", "a", {"x": 1.0, "s": "Paris"}), ("e", "b", {})]
    assert matched_gold(gold, [("e", "a", {"x": 1, "s": " paris"}), ("e", "z", {}), ("e", "b", {})]) == 2
    assert matched_gold(gold, [("e", "b", {}), ("e", "a", {"x": 1.0, "s": "Paris"})]) == 1  # order matters
    assert not call_matches(("e", "a", {"x": 1}), ("e", "a", {"x": 1, "extra": 2}))
    assert call_matches(("e", "a", {"x": 1, "note": "a"}), ("e", "a", {"x": 1, "note": "b"}), masked=["note"])
    assert not call_matches(("e", "a", {"flag": True}), ("e", "a", {"flag": 1}))


def test_llm_refiner_output_is_checked(chain):
    from envfactory.querygen.query import show, user_values, words

    values = [words(p) if isinstance(v, bool) else show(v) for _, p, v in user_values(chain)]
    good = "Hi! " + " / ".join(values) + " please."

    for text, determined in ((good, True), ("Can you sort out my booking?", not values)):
        q = make_query(chain, SPECS, 2, random.Random(0), scripted(lambda r, t=text: {"content": {"query": t}}), True)
        assert q.refiner == "llm:teacher" and q.refined == text and q.determined is determined
