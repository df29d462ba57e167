"""Rollouts: gold trajectories always; teacher-agent rollouts when a teacher LLM is configured, kept only
when the final state matches the gold one and every gold call is matched."""

from __future__ import annotations

import json
from collections import Counter

from ..agent.loop import llm_policy, run_episode
from ..agent.matching import matched_gold
from ..env.sandbox import SandboxedEnv
from ..env.spec import EnvSpec
from ..env.state import state_diff, state_hash
from ..llm import LLMClient, Message
from .execute import ExecutedChain
from .records import QueryRecord, TrajectoryRecord
from .user_sim import UserSimulator


def offered_tools(specs: dict[str, EnvSpec], envs: list[str]) -> tuple[list[dict], dict[str, tuple[str, str]]]:
    """OpenAI tools for the environments of a task; names get an `env__` prefix only when they collide."""
    names = Counter(t.name for e in envs for t in specs[e].tools)
    tools, routes = [], {}
    for e in envs:
        for t in specs[e].tools:
            name = t.name if names[t.name] == 1 else f"{e}__{t.name}"
            tool = t.openai_tool()
            tool["function"]["name"] = name
            tools.append(tool)
            routes[name] = (e, t.name)
    return tools, routes


def system_prompt(specs: dict[str, EnvSpec], envs: list[str]) -> str:
    desc = " ".join(f"{specs[e].name}: {specs[e].description}" for e in envs)
    return ("You are a capable assistant that completes the user's request by calling the available tools. "
            "Look up what you need instead of asking for it; ask the user only for what no tool can provide. "
            f"Systems: {desc}")


def _final_message(chain: ExecutedChain) -> str:
    last = chain.calls[-1]
    summary = json.dumps(last.output, ensure_ascii=False)
    if len(summary) > 400:
        summary = summary[:400] + "..."
    return f"Done: {last.tool.replace('_', ' ')} completed. Result: {summary}"


def gold_trajectory(chain: ExecutedChain, query: QueryRecord, specs: dict[str, EnvSpec], split: str) -> TrajectoryRecord:
    tools, routes = offered_tools(specs, chain.envs)
    back = {v: k for k, v in routes.items()}
    messages = [{"role": "system", "content": system_prompt(specs, chain.envs)},
                {"role": "user", "content": query.refined}]
    for i, call in enumerate(chain.calls):
        cid = f"call_{i}"
        messages.append({"role": "assistant", "content": "", "tool_calls": [{
            "id": cid, "type": "function",
            "function": {"name": back[(call.env, call.tool)], "arguments": json.dumps(call.arguments, ensure_ascii=False)}}]})
        messages.append({"role": "tool", "tool_call_id": cid, "content": json.dumps({"ok": call.output}, ensure_ascii=False)})
    messages.append({"role": "assistant", "content": _final_message(chain)})
    return TrajectoryRecord(traj_id=f"{chain.chain_id}-gold", chain_id=chain.chain_id, source="gold", envs=chain.envs,
                            scenarios=chain.scenarios, split=split, ambiguity=query.ambiguity, messages=messages,
                            tools=tools, final_state_hash=chain.final_state_hash, state_diff=chain.state_diff)


def _to_openai(messages: list[Message]) -> list[dict]:
    from ..llm.providers.openai_provider import to_openai_messages

    return to_openai_messages(messages)


def teacher_trajectory(chain: ExecutedChain, query: QueryRecord, specs: dict[str, EnvSpec],
                       sessions: dict[str, SandboxedEnv], teacher: LLMClient, split: str, max_turns: int,
                       user_sim: LLMClient | None = None) -> tuple[TrajectoryRecord, bool]:
    """Roll out the teacher; returns the record and whether it passed the filters."""
    tools, routes = offered_tools(specs, chain.envs)
    initial = {}
    for env, scenario in chain.scenarios.items():
        sessions[env].reset(scenario)
        initial[env] = sessions[env].state()
    sim = UserSimulator(user_sim, query) if user_sim is not None else None
    opening = sim.first_message() if sim else query.refined
    messages = [Message(role="system", content=system_prompt(specs, chain.envs)), Message(role="user", content=opening)]
    ep = run_episode(llm_policy(teacher), sessions, routes, tools, messages, max_turns,
                     user_reply=sim.reply if sim else None)
    finals = {env: sessions[env].state() for env in chain.envs}
    hashes = {env: state_hash(s) for env, s in finals.items()}
    gold = [(c.env, c.tool, c.arguments) for c in chain.calls]
    pred = [(c.env, c.tool, c.arguments) for c in ep.calls if "ok" in c.result]
    state_ok = hashes == chain.final_state_hash
    calls_ok = matched_gold(gold, pred) == len(gold)
    record = TrajectoryRecord(
        traj_id=f"{chain.chain_id}-teacher", chain_id=chain.chain_id, source="teacher", envs=chain.envs,
        scenarios=chain.scenarios, split=split, ambiguity=query.ambiguity, messages=_to_openai(ep.messages),
        tools=tools, final_state_hash=hashes,
        state_diff={e: [c.model_dump(mode="json") for c in state_diff(initial[e], finals[e])] for e in chain.envs},
        matched=state_ok and calls_ok, format_errors=ep.format_errors)
    return record, record.matched
