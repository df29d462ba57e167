"""Held-out task evaluation: a policy solves RL rows of unseen environments with the shared agent loop.

Success = the reward's state term is 1: every involved environment ends in the gold final state, and for an
environment the gold trajectory leaves untouched, the gold calls were made (doing nothing is no success).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, Field

from ..agent.loop import Policy, run_episode
from ..env.package import EnvPackage
from ..env.sandbox import SandboxedEnv
from ..llm import Message
from ..stats import mean_stderr
from .rewards import RewardConfig, composite_reward, row_outcome
from .rl import row_tools, task_rows  # noqa: F401 - task_rows: the rows evaluate() takes


class EvalReport(BaseModel):
    split: str
    episodes: int
    success_rate: float
    success_stderr: float | None = Field(None, description="standard error of success_rate; null when n < 2")
    mean_reward: float
    trace_rate: float
    format_errors: int
    per_env: dict[str, dict[str, float]]


def evaluate(policy: Policy, rows: list[dict], packages: dict[str, EnvPackage], max_turns: int = 8,
             max_tool_chars: int | None = 2000, reward: RewardConfig | None = None, split: str = "heldout",
             max_tools: int | None = None, seed: int = 0, shorten=None, concurrency: int = 1,
             on_episode=None) -> EvalReport:
    """`max_tools`/`seed`/`shorten` reproduce the training view (same tool subset, same output budget).

    `concurrency` episodes run at once, each worker with its own sandboxes; the report does not depend on it
    (rows are independent and results are gathered in row order). `on_episode(row, episode)` sees each transcript."""
    reward = reward or RewardConfig()
    local = threading.local()
    opened: list[SandboxedEnv] = []
    opened_lock = threading.Lock()

    def session(env: str) -> SandboxedEnv:
        sessions = local.__dict__.setdefault("sessions", {})
        if env not in sessions:
            sessions[env] = SandboxedEnv(packages[env])
            with opened_lock:
                opened.append(sessions[env])
        return sessions[env]

    def run_row(row: dict) -> tuple[bool, dict, int]:
        scenarios = json.loads(row["scenarios"])
        sessions, initial = {}, {}
        for env, scenario in scenarios.items():
            sessions[env] = session(env)
            sessions[env].reset(scenario)
            initial[env] = sessions[env].state_hash()
        # The same naming as when the row was written; the same tool subset as training showed.
        tools, routes = row_tools(row, packages, max_tools, seed)
        messages = [Message(role=m["role"], content=m["content"] or "") for m in row["prompt"]]
        ep = run_episode(policy, sessions, routes, tools, messages, max_turns, max_tool_chars=max_tool_chars,
                         shorten=shorten)
        outcome = row_outcome(row, [(c.env, c.tool, c.arguments) for c in ep.calls], ep.format_errors,
                              {e: sessions[e].state_hash() for e in scenarios}, initial)
        r = composite_reward(outcome, reward)
        if on_episode is not None:
            on_episode(row, ep)
        return r["state"] == 1.0, r, ep.format_errors

    try:
        if concurrency > 1 and len(rows) > 1:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                results = list(pool.map(run_row, rows))
        else:
            results = [run_row(row) for row in rows]
    finally:
        for s in opened:
            s.close()
    per_env: dict[str, dict[str, float]] = {}
    for row, (ok, _, _) in zip(rows, results):
        for env in row["envs"]:
            e = per_env.setdefault(env, {"episodes": 0, "successes": 0})
            e["episodes"] += 1
            e["successes"] += ok
    outcomes = [float(ok) for ok, _, _ in results]
    n = max(1, len(rows))
    return EvalReport(split=split, episodes=len(rows), success_rate=sum(outcomes) / n,
                      success_stderr=mean_stderr(outcomes)[1],
                      mean_reward=sum(r["reward"] for _, r, _ in results) / n,
                      trace_rate=sum(r["trace"] == 1.0 for _, r, _ in results) / n,
                      format_errors=sum(f for _, _, f in results), per_env=per_env)
