"""Held-out task evaluation: a policy solves RL rows of unseen environments with the shared agent loop.

Success = the reward's state term is 1: every involved environment ends in the gold final state, and for an
environment the gold trajectory leaves untouched, the gold calls were made (doing nothing is no success).
"""

from __future__ import annotations

import json

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
             max_tools: int | None = None, seed: int = 0, shorten=None) -> EvalReport:
    """`max_tools`/`seed`/`shorten` reproduce the training view (same tool subset, same output budget)."""
    reward = reward or RewardConfig()
    sessions: dict[str, SandboxedEnv] = {}
    per_env: dict[str, dict[str, float]] = {}
    totals = {"success": 0, "reward": 0.0, "trace": 0, "format": 0}
    outcomes: list[float] = []
    try:
        for row in rows:
            scenarios = json.loads(row["scenarios"])
            initial = {}
            for env, scenario in scenarios.items():
                if env not in sessions:
                    sessions[env] = SandboxedEnv(packages[env])
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
            ok = r["state"] == 1.0
            totals["success"] += ok
            outcomes.append(float(ok))
            totals["reward"] += r["reward"]
            totals["trace"] += r["trace"] == 1.0
            totals["format"] += ep.format_errors
            for env in row["envs"]:
                e = per_env.setdefault(env, {"episodes": 0, "successes": 0})
                e["episodes"] += 1
                e["successes"] += ok
    finally:
        for s in sessions.values():
            s.close()
    n = max(1, len(rows))
    return EvalReport(split=split, episodes=len(rows), success_rate=totals["success"] / n,
                      success_stderr=mean_stderr(outcomes)[1],
                      mean_reward=totals["reward"] / n, trace_rate=totals["trace"] / n,
                      format_errors=totals["format"], per_env=per_env)
