"""The `envs` stage: admit environment packages (catalog + extra folders) into `envs/manifest.json`.

An environment is admitted only if its validation cases pass in the sandbox.
Admitted packages are copied to `<out>/envs/<name>/` with their `report.json`;
rejected ones are listed with their reasons. Verification is cached by
content hash, so a re-run after an interruption recomputes nothing finished.

Held-out environments (`DataConfig.is_heldout`: by name or by domain) are always admitted and listed in
`heldout`; a held-out name or domain that matches no verified environment is an error (a typo or a failed
synthesis would otherwise leave the held-out split silently empty). A synthesized or imported environment
too similar to a held-out one (`env_similarity` >= `data.heldout_similarity`) is not admitted: it would
leak the held-out tools into training (`excluded_similar`); catalog pairs that similar are only reported
(`similar_catalog`) — hold out their domain (`data.heldout_domains`) to keep them out.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from .. import faults
from ..catalog import CATALOG_DIR, catalog_packages
from ..io import atomic_write_json
from .package import EnvPackage, known_envs, package_dirs
from .spec import EnvSpec
from .verify import VerifyReport, cached_verify

if TYPE_CHECKING:  # the stage reads the config it is given; `envfactory.config` imports this package's limits
    from ..config import ExperimentConfig


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


class SimilarEnv(BaseModel):
    """An environment that resembles a held-out one (scores in [0, 1], `score` = the larger of the two)."""
    name: str
    source: str
    resembles: str
    score: float
    tool_words: float = Field(description="Jaccard of the sets of words in their tool names")
    signatures: float = Field(description="Jaccard of their sets of (tool name, sorted parameter names)")


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
    heldout: list[str] = Field(default_factory=list,
                               description="admitted environments that are held out (data.heldout_envs by name, "
                                           "data.heldout_domains by domain)")
    heldout_unselected: list[str] = Field(default_factory=list,
                                          description="held-out catalog names/domains that envs.catalog does not "
                                                      "select: nothing of them is admitted or held out")
    excluded_similar: list[SimilarEnv] = Field(
        default_factory=list, description="verified synthesized/imported environments NOT admitted: at least "
                                          "data.heldout_similarity similar to a held-out environment")
    similar_catalog: list[SimilarEnv] = Field(
        default_factory=list, description="warning: catalog environments (trained on) at least "
                                          "data.heldout_similarity similar to a held-out one; hold out their domain "
                                          "with data.heldout_domains to keep them out of training")


def selected_packages(cfg: ExperimentConfig) -> list[tuple[str, EnvPackage]]:
    if cfg.envs.catalog == "all":
        chosen = [("catalog", EnvPackage(p)) for p in catalog_packages()]
    else:
        missing = [n for n in cfg.envs.catalog if not (CATALOG_DIR / n / "spec.json").is_file()]
        if missing:
            raise ValueError(f"unknown catalog environments {missing}; have {[p.name for p in catalog_packages()]}")
        chosen = [("catalog", EnvPackage(CATALOG_DIR / n)) for n in cfg.envs.catalog]
    chosen += [("extra", EnvPackage(d)) for d in package_dirs(cfg.envs.extra_dirs)]
    names = Counter(p.name for _, p in chosen)
    dupes = [n for n, c in names.items() if c > 1]
    if dupes:
        raise ValueError(f"environment names must be unique, duplicated: {dupes}")
    return chosen


def training_subset(names: list[str], heldout: list[str], count: int | None, seed: int) -> list[str]:
    """Held-out environments plus `count` of the others, in a seeded order. `heldout` is the resolved list
    (`DataConfig.heldout_among`: by name and by domain), not just `data.heldout_envs`.

    Subsets are nested for one seed (the 2 kept at count=2 are among the 4 kept at count=4), so a scaling
    curve adds environments instead of swapping them; different seeds draw different subsets.
    """
    if count is None:
        return list(names)
    train = sorted(n for n in names if n not in heldout)
    random.Random(f"envs.count:{seed}").shuffle(train)
    if count > len(train):
        raise ValueError(f"envs.count={count} but only {len(train)} verified training environments: {train} "
                         f"(held-out ones are admitted besides and do not count: {sorted(heldout)})")
    kept = set(train[:count]) | set(heldout)
    return [n for n in names if n in kept]


def _name_words(name: str) -> list[str]:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t.lower() for t in re.split(r"[^A-Za-z0-9]+", name) if t]


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def env_similarity(a: EnvSpec, b: EnvSpec) -> tuple[float, float, float]:
    """(score, tool_words, signatures): Jaccard of the tool-name word sets and of the (tool, parameter names)
    signature sets; score is the larger. A renamed copy of an environment scores 1.0."""
    def word_set(spec):
        return {w for t in spec.tools for w in _name_words(t.name)}

    def signature_set(spec):
        return {(t.name, tuple(sorted((t.input_schema or {}).get("properties") or {}))) for t in spec.tools}

    words = _jaccard(word_set(a), word_set(b))
    signatures = _jaccard(signature_set(a), signature_set(b))
    return max(words, signatures), words, signatures


def _most_similar(entry: "ManifestEntry", spec: EnvSpec, heldout: dict[str, EnvSpec]) -> SimilarEnv | None:
    best = None
    for name, other in sorted(heldout.items()):
        score, words, signatures = env_similarity(spec, other)
        if best is None or score > best.score:
            best = SimilarEnv(name=entry.name, source=entry.source, resembles=name, score=round(score, 4),
                              tool_words=round(words, 4), signatures=round(signatures, 4))
    return best


def _check_heldout(cfg: ExperimentConfig, verified: list[tuple[ManifestEntry, EnvPackage, VerifyReport]],
                   rejected: list[ManifestEntry], log) -> list[str]:
    """Every held-out name / domain must match a verified environment, except catalog ones that `envs.catalog`
    does not select (returned, and logged). Otherwise raise, listing what is known."""
    names = {e.name: e.domain for e, _, _ in verified}
    catalog = known_envs()
    unselected, problems = [], []
    for name in cfg.data.heldout_envs:
        if name in names:
            continue
        if any(r.name == name for r in rejected):
            problems.append(f"held-out environment {name!r} failed verification (see `rejected`)")
        elif name in catalog and cfg.envs.catalog != "all" and name not in cfg.envs.catalog:
            unselected.append(name)
        else:
            problems.append(f"held-out environment {name!r} matches no admitted environment")
    for domain in cfg.data.heldout_domains:
        if domain in names.values():
            continue
        if domain in catalog.values() and cfg.envs.catalog != "all":
            unselected.append(domain)
        else:
            problems.append(f"held-out domain {domain!r} matches no admitted environment")
    if problems:
        raise ValueError("; ".join(problems) + f". Admitted environments: {sorted(names)}; "
                         f"their domains: {sorted(set(names.values()))}")
    if unselected:
        log(f"[envs] WARNING: held out but not selected by envs.catalog (nothing held out for them): {unselected}")
    return unselected


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
    unselected = _check_heldout(cfg, verified, rejected, log)
    heldout = cfg.data.heldout_among({e.name: e.domain for e, _, _ in verified})
    heldout_specs = {e.name: p.spec for e, p, _ in verified if e.name in heldout}
    excluded, similar_catalog = [], []
    for entry, package, _ in verified:
        if entry.name in heldout or not heldout_specs:
            continue
        similar = _most_similar(entry, package.spec, heldout_specs)
        if similar is None or similar.score < cfg.data.heldout_similarity:
            continue
        if entry.source == "catalog":
            similar_catalog.append(similar)
            log(f"[envs] WARNING: catalog environment {entry.name} resembles held-out {similar.resembles} "
                f"(similarity {similar.score:.2f}); it stays in training unless data.heldout_domains covers it")
        else:
            excluded.append(similar)
            log(f"[envs] {entry.name} ({entry.source}) kept out of training: it resembles held-out "
                f"{similar.resembles} (similarity {similar.score:.2f} >= {cfg.data.heldout_similarity})")
    excluded_names = {x.name for x in excluded}
    candidates = [v for v in verified if v[0].name not in excluded_names]
    kept = set(training_subset([e.name for e, _, _ in candidates], sorted(heldout), cfg.envs.count, cfg.seed))
    held_back = [e.name for e, _, _ in candidates if e.name not in kept]
    for entry, package, report in candidates:
        if entry.name in kept:
            _install(package, report, envs_dir / package.name)
            admitted.append(entry)
    faults.point("envs:installed")  # crash tests: env folders in place, no manifest yet
    if held_back:
        log(f"[envs] envs.count={cfg.envs.count}: held back {held_back}")
    manifest = Manifest(experiment=cfg.experiment, config_hash=cfg.config_hash(), envs=admitted, rejected=rejected,
                        domains=dict(Counter(e.domain for e in admitted)),
                        sources=dict(Counter(e.source for e in admitted)), synthesis=synthesis,
                        held_back=held_back, train_envs=sum(e.name not in heldout for e in admitted),
                        heldout=[e.name for e in admitted if e.name in heldout], heldout_unselected=unselected,
                        excluded_similar=excluded, similar_catalog=similar_catalog)
    atomic_write_json(manifest_path, manifest.model_dump(mode="json"))
    return manifest


def log_envs_run(run, cfg: ExperimentConfig, manifest: Manifest, out: Path) -> None:
    """The `envs` stage's MLflow record (`run`: a `tracking.RuleRun`)."""
    total = len(manifest.envs) + len(manifest.rejected)
    run.params({"experiment": cfg.experiment, "catalog": cfg.envs.catalog, "extra_dirs": len(cfg.envs.extra_dirs)})
    run.metrics({"env_count": len(manifest.envs), "rejected_count": len(manifest.rejected),
                 "tool_count": sum(e.n_tools for e in manifest.envs), "domain_count": len(manifest.domains),
                 "pass_rate": len(manifest.envs) / total if total else 0.0})
    run.metrics({"synthesized_count": manifest.sources.get("synthesized", 0)})
    run.artifact(out)


def admitted_packages(manifest_path: Path) -> dict[str, EnvPackage]:
    """name -> package of every environment a manifest admitted (the later stages' view of the `envs` stage)."""
    manifest = json.loads(manifest_path.read_text())
    return {e["name"]: EnvPackage(manifest_path.parent / e["path"]) for e in manifest["envs"]}
