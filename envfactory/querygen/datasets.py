"""SFT and RL datasets (Parquet, fixed Arrow schemas, loadable with `datasets`).

sft.parquet  traj_id, chain_id, source, envs, scenarios (JSON), split, ambiguity,
             messages (list of {role, content, tool_calls[{id, type, function{name, arguments (JSON string)}}],
             tool_call_id}), tools (JSON string: OpenAI function tools), final_state_hash (JSON: env -> sha256)
rl.parquet   chain_id, envs, scenarios (JSON), split, ambiguity, prompt (messages as above: system + user),
             tools (JSON), gold_calls (JSON: [{env, tool, arguments}]), expected_state_hash (JSON: env -> sha256)

`split` is "train" or "heldout": a row is held out when any of its environments is (whole environments held
out by name, `data.heldout_envs`, or by domain, `data.heldout_domains`; `DataConfig.heldout_among` resolves them).
"""

from __future__ import annotations

import json

import pyarrow as pa

from .execute import ExecutedChain
from .records import QueryRecord, TrajectoryRecord
from .rollouts import offered_tools, system_prompt

TOOL_CALL = pa.struct([("id", pa.string()), ("type", pa.string()),
                       ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())]))])
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string()), ("tool_calls", pa.list_(TOOL_CALL)),
                     ("tool_call_id", pa.string())])

SFT_SCHEMA = pa.schema([("traj_id", pa.string()), ("chain_id", pa.string()), ("source", pa.string()),
                        ("envs", pa.list_(pa.string())), ("scenarios", pa.string()), ("split", pa.string()),
                        ("ambiguity", pa.int32()), ("messages", pa.list_(MESSAGE)), ("tools", pa.string()),
                        ("final_state_hash", pa.string())])
RL_SCHEMA = pa.schema([("chain_id", pa.string()), ("envs", pa.list_(pa.string())), ("scenarios", pa.string()),
                       ("split", pa.string()), ("ambiguity", pa.int32()), ("prompt", pa.list_(MESSAGE)),
                       ("tools", pa.string()), ("gold_calls", pa.string()), ("expected_state_hash", pa.string())])


def _message(m: dict) -> dict:
    calls = []
    for c in m.get("tool_calls") or []:
        args = c["function"]["arguments"]
        calls.append({"id": c.get("id", ""), "type": "function",
                      "function": {"name": c["function"]["name"],
                                   "arguments": (args if isinstance(args, str)
                                                 else json.dumps(args, ensure_ascii=False))}})
    return {"role": m["role"], "content": m.get("content") or "", "tool_calls": calls,
            "tool_call_id": m.get("tool_call_id")}


def split_of(envs: list[str], heldout: set[str]) -> str:
    """`heldout`: the resolved held-out environment names (`DataConfig.heldout_among`, names and domains)."""
    return "heldout" if heldout & set(envs) else "train"


def sft_table(trajectories: list[TrajectoryRecord]) -> pa.Table:
    rows = [{"traj_id": t.traj_id, "chain_id": t.chain_id, "source": t.source, "envs": t.envs,
             "scenarios": json.dumps(t.scenarios), "split": t.split, "ambiguity": t.ambiguity,
             "messages": [_message(m) for m in t.messages], "tools": json.dumps(t.tools, ensure_ascii=False),
             "final_state_hash": json.dumps(t.final_state_hash)} for t in trajectories if t.matched]
    return pa.Table.from_pylist(rows, schema=SFT_SCHEMA)


def rl_table(chains: list[ExecutedChain], queries: dict[str, QueryRecord], specs, heldout: set[str]) -> pa.Table:
    rows = []
    for c in chains:
        q = queries.get(c.chain_id)
        if q is None or not q.determined:
            continue
        tools, routes = offered_tools(specs, c.envs)
        back = {v: k for k, v in routes.items()}
        rows.append({"chain_id": c.chain_id, "envs": c.envs, "scenarios": json.dumps(c.scenarios),
                     "split": split_of(c.envs, heldout), "ambiguity": q.ambiguity,
                     "prompt": [_message({"role": "system", "content": system_prompt(specs, c.envs)}),
                                _message({"role": "user", "content": q.refined})],
                     "tools": json.dumps(tools, ensure_ascii=False),
                     "gold_calls": json.dumps([{"env": x.env, "tool": x.tool, "name": back[(x.env, x.tool)],
                                                "arguments": x.arguments} for x in c.calls], ensure_ascii=False),
                     "expected_state_hash": json.dumps(c.final_state_hash)})
    return pa.Table.from_pylist(rows, schema=RL_SCHEMA)
