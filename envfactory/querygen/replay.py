"""Replay gate of the `datasets` stage: every SFT and RL row is re-executed in the sandbox from its
scenario(s) and must reach the final state hash it records.

SFT rows replay the assistant `tool_calls` of their messages (routed with `offered_tools`, as the agent saw
them); RL rows replay their `gold_calls`. A row fails with cause `call_error` when a call that succeeded in the
recording errors now (or the reverse), `state_mismatch` when the calls succeed but a final hash differs, and
`sandbox_error` when its environment is not admitted or cannot be started / reset.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pyarrow as pa

from ..env.sandbox import SandboxError
from .execute import ChainExecutor
from .rollouts import offered_tools

MAX_LISTED = 20


class ReplayGateError(RuntimeError):
    """The replay rate is below `data.min_replay_rate`; `report` is the replay report."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def _recorded_error(content: str | None) -> bool:
    """Whether a recorded tool message is an error result (`{"error": ...}`, possibly truncated)."""
    text = (content or "").lstrip()
    try:
        value = json.loads(text)
    except ValueError:
        return text.startswith('{"error"')
    return isinstance(value, dict) and "error" in value


def sft_calls(row: dict, routes: dict[str, tuple[str, str]]) -> list[tuple[str | None, str, Any, bool]]:
    """(env, tool, arguments, recorded ok) of the calls of an SFT row, in order. A call the agent loop could not
    execute (name not offered, arguments not a JSON object) gets env None: fine when its recorded result is an
    error, a `call_error` when the recording says it succeeded."""
    recorded = {m["tool_call_id"]: m["content"] for m in row["messages"] if m["role"] == "tool"}
    calls = []
    for m in row["messages"]:
        for c in m.get("tool_calls") or []:
            name, raw = c["function"]["name"], c["function"]["arguments"]
            try:
                args = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                args = None
            env, tool = routes[name] if name in routes and isinstance(args, dict) else (None, name)
            calls.append((env, tool, args, not _recorded_error(recorded.get(c["id"]))))
    return calls


def rl_calls(row: dict) -> list[tuple[str | None, str, Any, bool]]:
    return [(g["env"], g["tool"], g["arguments"], True) for g in json.loads(row["gold_calls"])]


class Replayer:
    """One sandboxed worker per environment (the `ChainExecutor`'s), reused across rows.

    Each row starts with `reset(scenario)` on every environment it uses. That is a fresh state, not a leftover
    one: the worker reloads the scenario (validated against the env's State), or, when the scenario is already
    its base, undoes the whole journal back to the pristine load; the journaled state is all a tool may read or
    write (the environment contract: no clock, no randomness, ids from counters in the state), so what the next
    call sees is exactly what a newly started worker sees after the same reset. An environment that keeps hidden
    state outside `self.state` breaks that contract, and the replay catches it as a mismatch.
    """

    def __init__(self, packages: dict, limits=None):
        self.executor = ChainExecutor(packages, limits)
        self.packages = packages
        self._routes: dict[tuple[str, ...], dict] = {}
        self._broken: dict[str, str] = {}  # env -> why its worker does not start

    def routes(self, envs: list[str]) -> dict[str, tuple[str, str]]:
        key = tuple(envs)
        if key not in self._routes:
            self._routes[key] = offered_tools({e: self.packages[e].spec for e in envs}, envs)[1]
        return self._routes[key]

    def replay(self, scenarios: dict[str, str], calls: list[tuple[str | None, str, Any, bool]],
               expected: dict[str, str]) -> dict | None:
        """None when the row replays to `expected`; else {"cause", "detail"}."""
        used = {c[0] for c in calls if c[0] is not None}
        missing = sorted((set(scenarios) | used) - set(self.packages))
        if missing:
            return {"cause": "sandbox_error", "detail": f"environments not admitted: {missing}"}
        if used - set(scenarios):
            return {"cause": "call_error", "detail": f"calls into environments without a scenario: "
                                                     f"{sorted(used - set(scenarios))}"}
        broken = sorted(e for e in scenarios if e in self._broken)
        if broken:
            return {"cause": "sandbox_error", "detail": self._broken[broken[0]]}
        try:
            for env, scenario in scenarios.items():
                try:
                    session = self.executor.session(env)
                except SandboxError as exc:  # a worker that cannot start is not retried for every row
                    self._broken[env] = str(exc)[:300]
                    raise
                session.reset(scenario)
            for i, (env, tool, args, ok) in enumerate(calls):
                if env is None:  # not executable, as in the rollout that recorded it
                    result = {"error": {"kind": "not_executable", "message": "not an offered tool or bad arguments"}}
                else:
                    result = self.executor.session(env).call(tool, args)
                if ("ok" in result) != ok:
                    what = (f"{result['error']['kind']}: {result['error']['message']}" if "error" in result
                            else "succeeded but errored in the recording")
                    return {"cause": "call_error", "detail": f"call {i} {env}.{tool}: {what}"[:300]}
            got = {env: self.executor.session(env).state_hash() for env in scenarios}
        except SandboxError as exc:
            return {"cause": "sandbox_error", "detail": str(exc)[:300]}
        if got != expected:
            bad = sorted(e for e in set(got) | set(expected) if got.get(e) != expected.get(e))
            return {"cause": "state_mismatch", "detail": f"final state hash differs: {bad}"}
        return None

    def close(self) -> None:
        self.executor.close()


def replay_tables(sft: pa.Table, rl: pa.Table, packages: dict, limits=None) -> dict:
    """Replay every row of both tables; the report has the rates (per table and overall) and the failures."""
    start = time.perf_counter()
    replayer = Replayer(packages, limits)
    failures, totals = [], {}
    try:
        for table, rows, id_col in (("sft", sft.to_pylist(), "traj_id"), ("rl", rl.to_pylist(), "chain_id")):
            totals[table] = len(rows)
            for row in rows:
                scenarios = json.loads(row["scenarios"])
                if table == "sft":
                    if not set(row["envs"]) <= set(packages):
                        calls = []  # replay() reports the environments that are not admitted
                    else:
                        calls = sft_calls(row, replayer.routes(row["envs"]))
                    expected = json.loads(row["final_state_hash"])
                else:
                    calls, expected = rl_calls(row), json.loads(row["expected_state_hash"])
                failure = replayer.replay(scenarios, calls, expected)
                if failure is not None:
                    failures.append({"table": table, "row": row[id_col], **failure})
    finally:
        replayer.close()
    failed = {t: sum(f["table"] == t for f in failures) for t in totals}

    def rate(n: int, bad: int) -> float:
        return (n - bad) / n if n else 1.0

    total = sum(totals.values())
    return {"replay_rate": rate(total, len(failures)), "replay_rate_sft": rate(totals["sft"], failed["sft"]),
            "replay_rate_rl": rate(totals["rl"], failed["rl"]), "replay_rows": totals,
            "replay_equal": {t: totals[t] - failed[t] for t in totals}, "replay_failures": failures,
            "replay_causes": {c: sum(f["cause"] == c for f in failures)
                              for c in ("state_mismatch", "call_error", "sandbox_error")},
            "replay_wall_s": round(time.perf_counter() - start, 2)}


def replay_metrics(report: dict) -> dict[str, float]:
    """The MLflow metrics of a replay report (the failing rows themselves are in replay_report.json)."""
    return {"replay_rate": report["replay_rate"], "replay_rate_sft": report["replay_rate_sft"],
            "replay_rate_rl": report["replay_rate_rl"], "replay_failures": len(report["replay_failures"]),
            "replay_wall_s": report["replay_wall_s"]}


def gate_message(report: dict, min_rate: float) -> str:
    failures = report["replay_failures"]
    listed = ", ".join(f"{f['table']}:{f['row']} ({f['cause']})" for f in failures[:MAX_LISTED])
    more = f" and {len(failures) - MAX_LISTED} more" if len(failures) > MAX_LISTED else ""
    return (f"replay gate: {report['replay_rate']:.4f} of the rows replay to their recorded final state "
            f"(sft {report['replay_rate_sft']:.4f}, rl {report['replay_rate_rl']:.4f}) < data.min_replay_rate "
            f"{min_rate}; {len(failures)} failing rows: {listed}{more}; see replay_report.json")
