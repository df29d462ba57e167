"""EnvGen: propose -> specify -> implement -> test -> verify -> (revise -> verify)* -> admit or reject.

Each step is a function with pydantic input/output. The per-environment
checkpoint (`<work>/<name>/checkpoint.json`) is rewritten after every step, so an
interrupted run resumes where it stopped; with the response cache, redone LLM
calls cost nothing.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

from pydantic import BaseModel, ValidationError

from ..env.cases import CaseSet
from ..env.package import EnvPackage
from ..env.sandbox import SandboxLimits
from ..env.spec import EnvSpec
from ..env.verify import verify_package
from ..io import atomic_write_json, atomic_write_text
from ..llm import ChatRequest, LLMClient, Message
from . import prompts
from .outputs import (
    EnvCheckpoint,
    Implementation,
    ProposalList,
    Revision,
    RoundRecord,
    ScenarioProposal,
    SpecDraft,
    SynthesisReport,
    TestsDraft,
)
from .static_check import check_code

T = TypeVar("T", bound=BaseModel)
SYSTEM = "You are an expert Python engineer building executable environments for tool-use agents. Reply in JSON."


class StepFailed(RuntimeError):
    pass


def ask(client: LLMClient, out: type[T], prompt: str, step: str, env: str = "", round: int = 0,
        temperature: float = 0.0) -> T:
    """One structured LLM call: the reply must validate against `out`."""
    request = ChatRequest(model=client.cfg.model, temperature=temperature, json_schema=out.model_json_schema(),
                          messages=[Message(role="system", content=SYSTEM), Message(role="user", content=prompt)],
                          metadata={"step": step, "env": env, "round": round})
    response = client.chat(request)
    text = response.content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        return out.model_validate_json(text)
    except ValidationError as exc:
        raise StepFailed(f"{step}: reply does not match the expected JSON ({exc.error_count()} errors: "
                         f"{exc.errors()[0]['msg']})") from None


# -- steps -------------------------------------------------------------------------------------------
def propose(client: LLMClient, topics: list[str], documents: list[str], n: int) -> list[ScenarioProposal]:
    found = ask(client, ProposalList, prompts.propose(topics, documents, n), "propose").proposals
    seen, unique = set(), []
    for p in found:
        if p.name not in seen:
            seen.add(p.name)
            unique.append(p)
    return unique[:n]


def specify(client: LLMClient, proposal: ScenarioProposal) -> SpecDraft:
    return ask(client, SpecDraft, prompts.specify(prompts.dumps(proposal)), "specify", proposal.name)


def implement(client: LLMClient, proposal: ScenarioProposal, spec: SpecDraft) -> Implementation:
    return ask(client, Implementation, prompts.implement(prompts.dumps(proposal), prompts.dumps(spec)),
               "implement", proposal.name)


def write_tests(client: LLMClient, proposal: ScenarioProposal, spec: SpecDraft, impl: Implementation) -> TestsDraft:
    first = next(iter(impl.scenarios.values()), {})
    excerpt = json.dumps(first)[:4000]
    return ask(client, TestsDraft, prompts.write_tests(prompts.dumps(spec), impl.code, sorted(impl.scenarios),
                                                       excerpt), "tests", proposal.name)


def revise(client: LLMClient, ckpt: EnvCheckpoint, problems: list[str], round: int) -> Revision:
    return ask(client, Revision, prompts.revise(ckpt.implementation.code, problems), "revise", ckpt.proposal.name,
               round)


def write_package(ckpt: EnvCheckpoint, dest: Path) -> EnvPackage:
    spec = EnvSpec(name=ckpt.proposal.name, domain=ckpt.proposal.domain, description=ckpt.spec.description,
                   class_name=ckpt.spec.class_name, tools=ckpt.spec.tools, state_schema=ckpt.spec.state_schema)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "scenarios").mkdir(parents=True)
    atomic_write_json(dest / "spec.json", spec.model_dump(mode="json"))
    atomic_write_text(dest / "env.py", ckpt.implementation.code)
    for sid, state in ckpt.implementation.scenarios.items():
        atomic_write_json(dest / "scenarios" / f"{sid}.json", state)
    atomic_write_json(dest / "tests.json",
                      CaseSet(cases=ckpt.tests.cases).model_dump(mode="json", exclude_defaults=True))
    return EnvPackage(dest)


def verify(ckpt: EnvCheckpoint, dest: Path, limits: SandboxLimits, min_scenarios: int) -> list[str]:
    """Static checks, then the package's validation cases in the sandbox. Returns the problems."""
    problems = check_code(ckpt.implementation.code)
    if len(ckpt.implementation.scenarios) < min_scenarios:
        problems.append(f"only {len(ckpt.implementation.scenarios)} scenarios, need >= {min_scenarios}")
    bad_ids = [s for s in ckpt.implementation.scenarios if not s.replace("_", "").replace("-", "").isalnum()]
    if bad_ids:
        problems.append(f"scenario ids must be simple names: {bad_ids}")
    if problems:
        return problems
    package = write_package(ckpt, dest)
    report = verify_package(package, limits)
    return report.problems


# -- one environment ---------------------------------------------------------------------------------
def synthesize_env(client: LLMClient, proposal: ScenarioProposal, work: Path, limits: SandboxLimits,
                   max_rounds: int, min_scenarios: int, log: Callable[[str], None] = print) -> EnvCheckpoint:
    env_dir = work / proposal.name
    ckpt_path = env_dir / "checkpoint.json"
    ckpt = (EnvCheckpoint.model_validate_json(ckpt_path.read_text()) if ckpt_path.is_file()
            else EnvCheckpoint(proposal=proposal))
    if ckpt.status != "pending":
        return ckpt
    base_tokens, base_cost, base_seconds = ckpt.tokens, ckpt.cost_usd, ckpt.seconds
    t0 = time.perf_counter()

    def save():
        # Per-environment usage comes from the calls labelled with this env (runs are concurrent).
        mine = client.totals.by_env.get(proposal.name, {})
        ckpt.tokens = base_tokens + int(mine.get("tokens", 0))
        ckpt.cost_usd = base_cost + float(mine.get("cost_usd", 0.0))
        ckpt.seconds = round(base_seconds + time.perf_counter() - t0, 3)
        atomic_write_json(ckpt_path, ckpt.model_dump(mode="json"))

    def reject(reason: str) -> EnvCheckpoint:
        ckpt.status, ckpt.reasons = "rejected", [reason]
        save()
        log(f"[envgen] {proposal.name}: rejected: {reason}")
        return ckpt

    try:
        if ckpt.spec is None:
            ckpt.spec = specify(client, proposal)
            save()
        if ckpt.implementation is None:
            ckpt.implementation = implement(client, proposal, ckpt.spec)
            save()
        if ckpt.tests is None:
            ckpt.tests = write_tests(client, proposal, ckpt.spec, ckpt.implementation)
            save()
    except StepFailed as exc:
        return reject(str(exc))

    package_dir = env_dir / "package"
    while True:
        round_no = len(ckpt.rounds)
        problems = verify(ckpt, package_dir, limits, min_scenarios)
        ckpt.rounds.append(RoundRecord(round=round_no, problems=problems))
        save()
        if not problems:
            ckpt.status = "verified"
            save()
            log(f"[envgen] {proposal.name}: verified after {round_no} revision(s)")
            return ckpt
        log(f"[envgen] {proposal.name}: round {round_no}: {len(problems)} problem(s): {problems[0][:160]}")
        if round_no >= max_rounds:
            ckpt.status, ckpt.reasons = ("rejected",
                                         [f"still failing after {max_rounds} revision rounds"] + problems[:10])
            save()
            return ckpt
        try:
            rev = revise(client, ckpt, problems, round_no + 1)
        except StepFailed as exc:
            return reject(str(exc))
        ckpt.implementation = Implementation(code=rev.code, scenarios=rev.scenarios or ckpt.implementation.scenarios)
        if rev.cases:
            ckpt.tests = TestsDraft(cases=rev.cases)
        save()


def _reason_class(reason: str) -> str:
    for key in ("syntax error", "is not allowed", "not a method", "not parameters", "failed to start", "timeout",
                "time limit", "scenario", "reply does not match", "revision rounds", "case"):
        if key in reason:
            return key
    return "other"


# -- a whole run ---------------------------------------------------------------------------------------
def run_synthesis(client: LLMClient, topics: list[str], documents: list[str], n: int, work: Path, out_envs: Path,
                  limits: SandboxLimits, max_rounds: int, min_scenarios: int,
                  log: Callable[[str], None] = print) -> SynthesisReport:
    t0 = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    proposals_path = work / "proposals.json"
    if proposals_path.is_file():
        proposals = ProposalList.model_validate_json(proposals_path.read_text()).proposals
    else:
        try:
            proposals = propose(client, topics, documents, n)
        except StepFailed as exc:
            log(f"[envgen] proposing failed: {exc}")
            totals = client.totals
            return SynthesisReport(status="ran", provider=client.cfg.name, model=client.cfg.model,
                                   failure_reasons={str(exc)[:200]: 1}, tokens=totals.tokens, calls=totals.calls,
                                   cached_calls=totals.cached_calls, cost_usd=round(totals.cost_usd, 6),
                                   wall_seconds=round(time.perf_counter() - t0, 3), cache_keys=sorted(client.keys_used))
        atomic_write_json(proposals_path, ProposalList(proposals=proposals).model_dump(mode="json"))
    log(f"[envgen] {len(proposals)} proposals: {', '.join(p.name for p in proposals)}")
    # Environments are independent: synthesize them concurrently, as many as the provider's concurrency allows
    # (each one's LLM calls are sequential; its verification runs in its own sandbox workers).
    workers = max(1, min(client.cfg.concurrency, len(proposals)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: synthesize_env(client, p, work, limits, max_rounds, min_scenarios, log),
                                proposals))
    out_envs.mkdir(parents=True, exist_ok=True)
    for ck in results:
        dest = out_envs / ck.proposal.name
        if ck.status == "verified":
            tmp = out_envs / f".{ck.proposal.name}.tmp"
            if tmp.exists():
                shutil.rmtree(tmp)
            shutil.copytree(work / ck.proposal.name / "package", tmp)
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
    verified = [c for c in results if c.status == "verified"]
    reasons = Counter(_reason_class(r) for c in results if c.status == "rejected" for r in c.reasons[:1])
    totals = client.totals
    report = SynthesisReport(
        status="ran", provider=client.cfg.name, model=client.cfg.model, proposed=len(proposals),
        verified=len(verified), rejected=len(results) - len(verified), failure_reasons=dict(reasons),
        envs={c.proposal.name: {"status": c.status, "domain": c.proposal.domain,
                                "revision_rounds": max(0, len(c.rounds) - 1), "tokens": c.tokens,
                                "cost_usd": round(c.cost_usd, 6), "seconds": c.seconds, "reasons": c.reasons}
              for c in results},
        tokens=totals.tokens, calls=totals.calls, cached_calls=totals.cached_calls, cost_usd=round(totals.cost_usd, 6),
        tokens_per_verified_env=(sum(c.tokens for c in results) / len(verified)) if verified else None,
        cost_per_verified_env=(sum(c.cost_usd for c in results) / len(verified)) if verified else None,
        wall_seconds=round(time.perf_counter() - t0, 3), cache_keys=sorted(client.keys_used))
    return report
