"""Admission check of an environment package, run in the sandbox; reports cached by content hash."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import BaseModel, Field

from ..io import atomic_write_json, cache_root
from .cases import CaseResult, CaseSet, run_cases
from .package import EnvPackage
from .sandbox import SandboxedEnv, SandboxError, SandboxLimits

VERIFIER_VERSION = "2"  # 2: read confinement. Bump when the checks change: invalidates cached reports


class VerifyReport(BaseModel):
    name: str
    domain: str
    content_hash: str
    verifier_version: str = VERIFIER_VERSION
    verified: bool
    problems: list[str] = Field(default_factory=list)
    n_tools: int
    n_scenarios: int
    cases: list[CaseResult] = Field(default_factory=list)
    layers: dict[str, bool] = Field(default_factory=dict)
    seconds: float = 0.0

    @property
    def pass_rate(self) -> float:
        return sum(c.passed for c in self.cases) / len(self.cases) if self.cases else 0.0


def verify_package(package: EnvPackage, limits: SandboxLimits | None = None) -> VerifyReport:
    t0 = time.perf_counter()
    spec = package.spec
    problems: list[str] = []
    scenario_ids = package.scenario_ids()
    if not spec.tools:
        problems.append("spec declares no tools")
    if not scenario_ids:
        problems.append("no scenarios")
    try:
        cases = CaseSet.model_validate(package.tests())
    except ValueError as exc:
        cases = CaseSet(cases=[])
        problems.append(f"tests.json is malformed: {exc}")
    if not cases.cases:
        problems.append("no validation cases")
    results: list[CaseResult] = []
    layers: dict[str, bool] = {}
    if not problems:
        try:
            with SandboxedEnv(package, limits) as env:
                layers = env.layers
                for sid in scenario_ids:
                    try:
                        env.reset(sid)
                    except SandboxError as exc:
                        problems.append(f"scenario {sid} does not load: {exc}")
                if not problems:
                    results = run_cases(env, cases, spec)
        except SandboxError as exc:
            problems.append(str(exc))
    problems += [f"case {r.name!r} failed: {'; '.join(r.failures)}" for r in results if not r.passed]
    return VerifyReport(name=spec.name, domain=spec.domain, content_hash=package.content_hash(),
                        verified=not problems, problems=problems, n_tools=len(spec.tools),
                        n_scenarios=len(scenario_ids), cases=results, layers=layers,
                        seconds=round(time.perf_counter() - t0, 3))


def cache_dir() -> Path:
    return cache_root() / "verify"


def cached_verify(package: EnvPackage, limits: SandboxLimits | None = None, refresh: bool = False) -> VerifyReport:
    """Verify once per distinct package content (and verifier version); later calls read the report."""
    key = f"{package.content_hash()}-v{VERIFIER_VERSION}"
    path = cache_dir() / f"{key}.json"
    if path.is_file() and not refresh:
        return VerifyReport.model_validate_json(path.read_text())
    report = verify_package(package, limits)
    atomic_write_json(path, json.loads(report.model_dump_json()))
    return report
