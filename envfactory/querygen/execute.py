"""Gold execution: run a planned chain in its sandboxed environment(s) from the scenario.

A chain is kept only when every call succeeds; the result records the concrete
gold calls, their outputs, the expected final state hash per environment and
the state diff.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field

from ..env.sandbox import SandboxedEnv
from ..env.state import state_diff, state_hash
from ..graph.fields import ARRAY
from ..graph.sampler import Chain


class GoldCall(BaseModel):
    env: str
    tool: str
    arguments: dict[str, Any]
    output: Any = None
    user_args: list[str] = Field(default_factory=list, description="arguments the user must state")


class ExecutedChain(BaseModel):
    chain_id: str
    sampler: str
    target: str
    scenarios: dict[str, str]
    calls: list[GoldCall]
    final_state_hash: dict[str, str]
    state_diff: dict[str, list[dict]]

    @property
    def length(self) -> int:
        return len(self.calls)

    @property
    def envs(self) -> list[str]:
        return sorted(self.scenarios)


class ExecutionFailure(BaseModel):
    step: int
    kind: str
    message: str


def _follow(output: Any, path: list[str], pick: int) -> tuple[bool, Any]:
    node = output
    for key in path:
        if key == ARRAY:
            if not isinstance(node, list) or not node:
                return False, None
            node = node[pick % len(node)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return False, None
    return True, node


def call_key(scenarios: dict[str, str], calls: list[GoldCall]) -> str:
    payload = {"scenarios": scenarios, "calls": [[c.env, c.tool, c.arguments] for c in calls]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class ChainExecutor:
    """Keeps one sandboxed instance per environment and the pristine state of each scenario."""

    def __init__(self, packages: dict, limits=None):
        self.packages = packages
        self.limits = limits
        self.sessions: dict[str, SandboxedEnv] = {}
        self._initial: dict[tuple[str, str], dict] = {}

    def session(self, env: str) -> SandboxedEnv:
        if env not in self.sessions:
            self.sessions[env] = SandboxedEnv(self.packages[env], self.limits)
        return self.sessions[env]

    def initial_state(self, env: str, scenario: str) -> dict:
        if (env, scenario) not in self._initial:
            s = self.session(env)
            s.reset(scenario)
            self._initial[(env, scenario)] = s.state()
        return self._initial[(env, scenario)]

    def run(self, chain: Chain) -> ExecutedChain | ExecutionFailure:
        for env, scenario in chain.scenarios.items():
            self.initial_state(env, scenario)
            self.session(env).reset(scenario)
        calls: list[GoldCall] = []
        for i, step in enumerate(chain.steps):
            args, user_args = {}, []
            for name, src in step.args.items():
                if src.kind == "user":
                    args[name] = src.value
                    user_args.append(name)
                    continue
                ok, value = _follow(calls[src.step].output, src.path, src.pick)
                if not ok or value is None:
                    return ExecutionFailure(step=i, kind="unresolved", message=f"{name}: no value at {src.path}")
                args[name] = [value] if isinstance(value, (str, int, float)) and _wants_list(step, name, self) \
                    else value
            result = self.session(step.env).call(step.tool, args)
            if "error" in result:
                return ExecutionFailure(step=i, kind=result["error"]["kind"], message=result["error"]["message"])
            calls.append(GoldCall(env=step.env, tool=step.tool, arguments=args, output=result["ok"],
                                  user_args=sorted(user_args)))
        hashes, diffs = {}, {}
        for env, scenario in chain.scenarios.items():
            final = self.session(env).state()
            hashes[env] = state_hash(final)
            diffs[env] = [c.model_dump(mode="json") for c in state_diff(self.initial_state(env, scenario), final)]
        return ExecutedChain(chain_id=call_key(chain.scenarios, calls), sampler=chain.sampler, target=chain.target,
                             scenarios=chain.scenarios, calls=calls, final_state_hash=hashes, state_diff=diffs)

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()
        self.sessions.clear()


def _wants_list(step, name: str, executor: ChainExecutor) -> bool:
    spec = executor.packages[step.env].spec.tool(step.tool)
    prop = (spec.input_schema.get("properties") or {}).get(name, {}) if spec else {}
    return prop.get("type") == "array"
