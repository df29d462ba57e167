"""Held-out evaluation with the shared agent loop: an oracle solves every task, doing nothing solves none."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from envfactory.llm import Message, ToolCall
from envfactory.train.eval_envs import evaluate, task_rows


def oracle_for(rows):
    """Replays each row's gold calls, then answers."""
    gold = {r["prompt"][1]["content"]: json.loads(r["gold_calls"]) for r in rows}

    def act(messages: list[Message], tools):
        calls = gold[next(m.content for m in messages if m.role == "user")]
        done = sum(1 for m in messages if m.role == "tool")
        if done < len(calls):
            c = calls[done]
            return Message(role="assistant",
                           tool_calls=[ToolCall(id=f"o{done}", name=c["name"], arguments=c["arguments"])])
        return Message(role="assistant", content="Done.")

    return act


def test_oracle_succeeds_everywhere_and_idle_nowhere(tiny_rl_data):
    data = tiny_rl_data
    packages, rl = data
    rows = task_rows(rl, "heldout", limit=12)
    assert rows and all(r["envs"] == ["cinema_tickets"] for r in rows)
    oracle = evaluate(oracle_for(rows), rows, packages, max_turns=10)
    assert oracle.success_rate == 1.0 and oracle.trace_rate == 1.0 and oracle.mean_reward == 1.0
    idle = evaluate(lambda m, t: Message(role="assistant", content="All done!"), rows, packages)
    assert idle.success_rate == 0.0 and idle.mean_reward == 0.0
    garbage = evaluate(lambda m, t: Message(role="assistant", tool_calls=[ToolCall(id="x", name="get_seat_map",
                                                                                   arguments="{bad")]),
                       rows[:2], packages, max_turns=3)
    assert garbage.format_errors == 6 and garbage.success_rate == 0.0
    assert pq.read_table(rl).num_rows > len(rows)


def test_concurrent_episodes_give_the_same_report_with_their_own_sandboxes(tiny_rl_data):
    """Episodes in flight at once each get their own sandboxes: a mixed-outcome policy (oracle on every other
    task, idle on the rest) scores the same at concurrency 1 and 4; shared sandboxes would cross the states."""
    packages, rl = tiny_rl_data
    rows = task_rows(rl, "heldout", limit=12)
    oracle = oracle_for(rows)
    solve = {r["prompt"][1]["content"] for r in rows[::2]}

    def mixed(messages, tools):
        if next(m.content for m in messages if m.role == "user") in solve:
            return oracle(messages, tools)
        return Message(role="assistant", content="Nothing to do.")

    one = evaluate(mixed, rows, packages, max_turns=10, concurrency=1)
    four = evaluate(mixed, rows, packages, max_turns=10, concurrency=4)
    assert one.success_rate == len(solve) / len(rows)
    assert four.model_dump() == one.model_dump()
