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
from .query import env_tool_names, scrub_tool_names, show, words
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


_LABEL_KEYS = ("name", "full_name", "title", "subject", "client_name", "display_name", "handle")
_MAX_FIELDS, _MAX_ITEMS, _MAX_CHARS = 8, 3, 80


def _scalar(value) -> str | None:
    """A value as plain words (`yes`/`no`, numbers without `.0`, long text cut); None when it is not a scalar."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return show(value)
    if isinstance(value, str):
        text = " ".join(value.split())
        return text if len(text) <= _MAX_CHARS else text[:_MAX_CHARS - 3].rstrip() + "..."
    return None


def _field(key: str, value) -> str | None:
    """One `key value` phrase of a record (lists of scalars joined, lists of records counted), or None."""
    if value is None:
        return None
    if (plain := _scalar(value)) is not None:
        return f"{words(key)} {plain}"
    if isinstance(value, list):
        if not value:
            return f"no {words(key)}"
        if all(_scalar(v) is not None for v in value):
            shown = [_scalar(v) for v in value[:4]]
            more = f" and {len(value) - 4} more" if len(value) > 4 else ""
            return f"{words(key)} {', '.join(shown)}{more}"
        return f"{len(value)} {words(key)}"
    if isinstance(value, dict):
        inner = [f for k, v in value.items() if (f := _field(k, v)) is not None and _scalar(v) is not None][:3]
        return f"{words(key)} with {', '.join(inner)}" if inner else None
    return None


def _record(output: dict, skip: set[str] = frozenset()) -> list[str]:
    return [f for k, v in output.items() if k not in skip and (f := _field(k, v)) is not None][:_MAX_FIELDS]


def _is_id(key: str) -> bool:
    return key == "id" or key.endswith("_id") or key in ("sku", "isbn")


def _label(item, same: set[str] = frozenset()) -> str:
    """A short name for one item of a list result: its name/title and its id, else its id and the first fields
    that tell the items apart (`same`: keys whose value every item shares)."""
    if not isinstance(item, dict):
        return _scalar(item) or "an item"
    label = next((_scalar(item[k]) for k in _LABEL_KEYS if _scalar(item.get(k))), None)
    ident = next((_scalar(v) for k, v in item.items() if _is_id(k) and k not in same and _scalar(v)), None)
    if label:
        return f"{label} ({ident})" if ident else label
    fields = _record({k: v for k, v in item.items() if not _is_id(k)}, skip=same)[:2]
    if ident:
        return f"{ident} ({', '.join(fields)})" if fields else ident
    return ", ".join(fields) or "an item"


def _shared_keys(items: list) -> set[str]:
    dicts = [x for x in items if isinstance(x, dict)]
    if len(dicts) < 2:
        return set()
    return {k for k, v in dicts[0].items() if all(d.get(k) == v for d in dicts[1:])}


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _final_message(chain: ExecutedChain, specs: dict[str, EnvSpec] | None = None) -> str:
    """The gold answer: a sentence that answers the request from the tool results — what was done or found,
    with the key values of the last output and the values earlier outputs supplied — never a tool name or a
    raw JSON dump. Deterministic (no sampling)."""
    last = chain.calls[-1]
    out = last.output
    changed = any(chain.state_diff.values())
    shown: list[str] = []
    if isinstance(out, dict):
        fields = _record(out)
        body = ("All done. Here are the details: " if changed else "Here is what I found: ") + \
            (", ".join(fields) if fields else "nothing further to report") + "."
        shown = [_scalar(v) or "" for v in out.values()]
    elif isinstance(out, list):
        if not out:
            body = "All done; nothing came back to report." if changed else "I found nothing that matches."
        else:
            same = _shared_keys(out)
            labels = [_label(x, same) for x in out[:_MAX_ITEMS]]
            more = [f"and {len(out) - _MAX_ITEMS} more"] if len(out) > _MAX_ITEMS else []
            noun = "result" if len(out) == 1 else "results"
            body = f"{'All done. ' if changed else ''}I found {len(out)} {noun}: {'; '.join(labels + more)}."
            shown = [_scalar(v) or "" for x in out[:_MAX_ITEMS] if isinstance(x, dict) for v in x.values()] + labels
    elif out is None:
        body = "All done." if changed else "There is nothing to report."
    else:
        body = f"{'All done. ' if changed else ''}The answer is {_scalar(out) or show(out)}."
        shown = [_scalar(out) or ""]
    # values earlier results supplied to later steps: how the answer was reached
    used, seen = [], set(shown)
    for call in chain.calls[1:]:
        for k, v in call.arguments.items():
            plain = _scalar(v) if not isinstance(v, list) else ", ".join(filter(None, map(_scalar, v)))
            if k in call.user_args or not plain or plain in seen:
                continue
            seen.add(plain)
            used.append(f"{words(k)} {plain}")
    if used:
        body += f" Along the way I used {_and(used[:4])}, from the earlier results."
    if specs:
        body = scrub_tool_names(body, env_tool_names(specs, chain.envs), [v for v in shown if v])
    return body


def gold_trajectory(chain: ExecutedChain, query: QueryRecord, specs: dict[str, EnvSpec],
                    split: str) -> TrajectoryRecord:
    tools, routes = offered_tools(specs, chain.envs)
    back = {v: k for k, v in routes.items()}
    messages = [{"role": "system", "content": system_prompt(specs, chain.envs)},
                {"role": "user", "content": query.refined}]
    for i, call in enumerate(chain.calls):
        cid = f"call_{i}"
        messages.append({"role": "assistant", "content": "", "tool_calls": [{
            "id": cid, "type": "function",
            "function": {"name": back[(call.env, call.tool)],
                         "arguments": json.dumps(call.arguments, ensure_ascii=False)}}]})
        messages.append({"role": "tool", "tool_call_id": cid,
                         "content": json.dumps({"ok": call.output}, ensure_ascii=False)})
    messages.append({"role": "assistant", "content": _final_message(chain, specs)})
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
