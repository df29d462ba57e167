"""The `envs` stage: admit environment packages (catalog + extra folders) into `envs/manifest.json`.

An environment is admitted only if its validation cases pass in the sandbox.
Admitted packages are copied to `<out>/envs/<name>/` with their `report.json`;
rejected ones are listed with their reasons. Verification is cached by
content hash, so a re-run after an interruption recomputes nothing finished.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from ..catalog import CATALOG_DIR, catalog_packages
from ..config import ExperimentConfig
from ..io import atomic_write_json
from .package import EnvPackage
from .verify import VerifyReport, cached_verify


class ManifestEntry(BaseModel):
    name: str
    domain: str
    source: str  # "catalog" | "extra"
    path: str    # relative to the manifest's folder
    content_hash: str
    n_tools: int
    n_scenarios: int
    verified: bool
    problems: list[str] = Field(default_factory=list)


class Manifest(BaseModel):
    experiment: str
    config_hash: str
    envs: list[ManifestEntry]
    rejected: list[ManifestEntry] = Field(default_factory=list)
    domains: dict[str, int] = Field(default_factory=dict)
    sources: dict[str, int] = Field(default_factory=dict)
    synthesis: dict = Field(default_factory=dict, description="EnvGen status: ran/skipped, why, counts")
    held_back: list[str] = Field(default_factory=list,
                                 description="verified but left out by `envs.count` (environment-count scaling)")
    train_envs: int = Field(0, description="admitted environments that are not held out: the scaling axis")


def selected_packages(cfg: ExperimentConfig) -> list[tuple[str, EnvPackage]]:
    if cfg.envs.catalog == "all":
        chosen = [("catalog", EnvPackage(p)) for p in catalog_packages()]
    else:
        missing = [n for n in cfg.envs.catalog if not (CATALOG_DIR / n / "spec.json").is_file()]
        if missing:
            raise ValueError(f"unknown catalog environments {missing}; have {[p.name for p in catalog_packages()]}")
        chosen = [("catalog", EnvPackage(CATALOG_DIR / n)) for n in cfg.envs.catalog]
    chosen += [("extra", EnvPackage(d)) for d in cfg.envs.extra_dirs]
    names = Counter(p.name for _, p in chosen)
    dupes = [n for n, c in names.items() if c > 1]
    if dupes:
        raise ValueError(f"environment names must be unique, duplicated: {dupes}")
    return chosen


def training_subset(names: list[str], heldout: list[str], count: int | None, seed: int) -> list[str]:
    """Held-out environments plus `count` of the others, in a seeded order.

    Subsets are nested for one seed (the 2 kept at count=2 are among the 4 kept at count=4), so a scaling
    curve adds environments instead of swapping them; different seeds draw different subsets.
    """
    if count is None:
        return list(names)
    train = sorted(n for n in names if n not in heldout)
    random.Random(f"envs.count:{seed}").shuffle(train)
    if count > len(train):
        raise ValueError(f"envs.count={count} but only {len(train)} verified training environments: {train}")
    kept = set(train[:count]) | set(heldout)
    return [n for n in names if n in kept]


def _install(package: EnvPackage, report: VerifyReport, dest: Path) -> None:
    """Copy the package and its report to `dest` atomically (copy aside, then rename)."""
    if dest.exists() and (dest / "report.json").is_file():
        old = json.loads((dest / "report.json").read_text())
        if old.get("content_hash") == report.content_hash:
            return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    shutil.copytree(package.root, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    atomic_write_json(tmp / "report.json", json.loads(report.model_dump_json()))
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def synthesized_packages(envgen_dir: Path | None) -> tuple[list[tuple[str, EnvPackage]], dict]:
    """Verified EnvGen outputs and a summary of the synthesis run (or why it was skipped)."""
    if envgen_dir is None:
        return [], {"status": "not_run", "reason": "no envgen report given"}
    report = json.loads((envgen_dir / "report.json").read_text())
    summary = {k: report.get(k) for k in ("status", "reason", "provider", "model", "proposed", "verified", "rejected",
                                          "tokens", "cost_usd", "tokens_per_verified_env")}
    envs_root = envgen_dir / "envs"
    packages = [("synthesized", EnvPackage(p)) for p in sorted(envs_root.iterdir())
                if (p / "spec.json").is_file()] if envs_root.is_dir() else []
    return packages, summary


def build_manifest(cfg: ExperimentConfig, manifest_path: Path, envgen_dir: Path | None = None,
                   log=print) -> Manifest:
    envs_dir = manifest_path.parent
    admitted, rejected = [], []
    synthesized, synthesis = synthesized_packages(envgen_dir)
    if synthesis.get("status") == "skipped":
        log(f"[envs] synthesis skipped: {synthesis.get('reason')}")
    chosen = selected_packages(cfg)
    taken = {p.name for _, p in chosen}
    clashes = [p.name for _, p in synthesized if p.name in taken]
    if clashes:
        raise ValueError(f"synthesized environments clash with catalog/extra names: {clashes}")
    verified = []
    for source, package in chosen + synthesized:
        report = cached_verify(package, cfg.envs.sandbox)
        entry = ManifestEntry(name=package.name, domain=package.spec.domain, source=source,
                              path=package.name, content_hash=report.content_hash, n_tools=report.n_tools,
                              n_scenarios=report.n_scenarios, verified=report.verified, problems=report.problems)
        if report.verified:
            verified.append((entry, package, report))
        else:
            rejected.append(entry)
        log(f"[envs] {package.name:28s} {'verified' if report.verified else 'REJECTED'} "
            f"({report.n_tools} tools, {len(report.cases)} cases, {report.seconds:.2f}s)")
        for problem in report.problems:
            log(f"[envs]   - {problem}")
    kept = set(training_subset([e.name for e, _, _ in verified], cfg.data.heldout_envs, cfg.envs.count, cfg.seed))
    held_back = [e.name for e, _, _ in verified if e.name not in kept]
    for entry, package, report in verified:
        if entry.name in kept:
            _install(package, report, envs_dir / package.name)
            admitted.append(entry)
    if held_back:
        log(f"[envs] envs.count={cfg.envs.count}: held back {held_back}")
    heldout = set(cfg.data.heldout_envs)
    manifest = Manifest(experiment=cfg.experiment, config_hash=cfg.config_hash(), envs=admitted, rejected=rejected,
                        domains=dict(Counter(e.domain for e in admitted)),
                        sources=dict(Counter(e.source for e in admitted)), synthesis=synthesis,
                        held_back=held_back, train_envs=sum(e.name not in heldout for e in admitted))
    atomic_write_json(manifest_path, manifest.model_dump(mode="json"))
    return manifest
