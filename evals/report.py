"""`results/<model>.json`: every benchmark, the held-out success per training stage, the per-stage benchmarks
(`evaluation.per_stage`, e.g. capability) on every stage with each trained stage's delta against base, and
provenance.

Versioned (`schema_version`); a benchmark that could not run is present with status `unavailable` and its
reason, never silently missing. Paper numbers come from `config/paper_results.yaml` when known.
"""

from __future__ import annotations

import json
import math
import os
import time
from importlib import metadata
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from envfactory.config import ExperimentConfig
from envfactory.io import atomic_write_text

from .base import BenchmarkResult, file_sha256

RESULTS_SCHEMA_VERSION = 3  # 2: paper numbers carry base, trained and source; 3: per_stage (scores, deltas)
PAPER_RESULTS = Path(__file__).resolve().parents[1] / "config" / "paper_results.yaml"
TRACKED_PACKAGES = ("envfactory", "torch", "transformers", "trl", "peft", "deepspeed", "snakemake", "mlflow", "mcp",
                    "pydantic", "pyarrow", "datasets")


class Provenance(BaseModel):
    experiment: str
    config_hash: str
    git_sha: str
    created_at: str
    mlflow_parent_run_id: str | None = None
    package_versions: dict[str, str]
    data_checksums: dict[str, str] = Field(description="sha256 of the datasets and manifest the model was trained on")
    llm_cache_keys: int = Field(0, description="LLM cache entries present when the report was written")
    config: dict = Field(default_factory=dict, description="the resolved experiment config (re-run from it)")


class PaperNumber(BaseModel):
    """One number the paper reports, with where it comes from."""
    model_config = ConfigDict(extra="forbid")
    base: float | None = Field(None, ge=0, le=1, description="the untrained model")
    trained: float = Field(ge=0, le=1, description="the paper's EnvFactory model")
    source: str = Field(min_length=1)


class StageDelta(BaseModel):
    """A trained stage minus the base model on one benchmark (same tasks, same data)."""
    base: float | None
    stage: float | None
    delta: float | None = Field(description="stage − base (task-weighted score); null when either was not scored")
    stderr: float | None = Field(description="sqrt(se_stage² + se_base²): treats the two runs as independent samples, "
                                             "which overstates the error of a paired difference; null when undefined")
    categories: dict[str, float] = Field(default_factory=dict, description="category -> stage − base")
    n: int = Field(0, description="tasks behind the delta")
    label: str = ""


class StageResults(BaseModel):
    """One per-stage benchmark: its result on every stage (base first) and each trained stage's delta."""
    stages: dict[str, BenchmarkResult]
    deltas: dict[str, StageDelta] = Field(default_factory=dict, description="trained stage -> delta against base")


class ModelResults(BaseModel):
    schema_version: int = RESULTS_SCHEMA_VERSION
    model: str
    final_stage: str
    benchmarks: dict[str, BenchmarkResult]
    heldout: dict[str, dict] = Field(default_factory=dict, description="stage -> held-out environment success")
    training: dict[str, dict] = Field(default_factory=dict, description="stage -> training metrics summary")
    paper: dict[str, PaperNumber] = Field(default_factory=dict, description="the paper's reported numbers, when known")
    contamination: dict[str, dict] = Field(default_factory=dict, description="benchmark -> overlap counts with the "
                                                                             "training environments (full list: "
                                                                             "evals/contamination.json)")
    per_stage: dict[str, StageResults] = Field(default_factory=dict, description="benchmark -> its result per stage "
                                                                                 "and deltas against base "
                                                                                 "(evaluation.per_stage)")
    provenance: Provenance


def package_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def paper_numbers(model: str) -> dict[str, PaperNumber]:
    """The paper's numbers for a model card, keyed like our metrics (`config/paper_results.yaml`)."""
    if not PAPER_RESULTS.is_file():
        return {}
    entries = (yaml.safe_load(PAPER_RESULTS.read_text()) or {}).get(model) or {}
    return {k: PaperNumber.model_validate(v) for k, v in entries.items()}


def _count_cache(cfg: ExperimentConfig) -> int:
    dirs = [d for d in (cfg.envgen.cache_dir, cfg.evaluation.cache_dir) if d]
    return sum(sum(1 for p in Path(d).rglob("*.json")) for d in dirs if Path(d).is_dir())


def _weighted_stderr(b: BenchmarkResult) -> float | None:
    """Standard error of the task-weighted score from the categories' (independent categories)."""
    n = sum(c.n for c in b.categories)
    if not n or any(c.stderr is None for c in b.categories):
        return None
    return math.sqrt(sum((c.n / n * c.stderr) ** 2 for c in b.categories))


def stage_delta(base: BenchmarkResult, stage: BenchmarkResult) -> StageDelta:
    """`stage` − `base`, overall (task-weighted) and per category both runs scored."""
    scored = base.status == "scored" and stage.status == "scored"
    b, s = (base.score, stage.score) if scored else (None, None)
    base_cats = {c.category: c for c in base.categories}
    cats = {c.category: c.score - base_cats[c.category].score for c in stage.categories
            if scored and c.category in base_cats}
    delta = s - b if b is not None and s is not None else None
    se_b, se_s = _weighted_stderr(base), _weighted_stderr(stage)
    stderr = math.sqrt(se_b ** 2 + se_s ** 2) if delta is not None and None not in (se_b, se_s) else None
    labels = []
    if scored and sorted(base_cats) != sorted(c.category for c in stage.categories):
        labels.append(f"categories differ: base {sorted(base_cats)}, stage {[c.category for c in stage.categories]}")
    if not scored:
        labels.append("; ".join(f"{r.policy} {r.status}: {r.reason}" for r in (base, stage) if r.status != "scored"))
    return StageDelta(base=b, stage=s, delta=delta, stderr=stderr, categories=cats,
                      n=min(sum(c.n for c in base.categories), sum(c.n for c in stage.categories)),
                      label="; ".join(labels))


def per_stage_results(benchmarks: dict[str, BenchmarkResult], stage_files: list[tuple[str, Path]],
                      stages: list[str]) -> dict[str, StageResults]:
    """Every per-stage benchmark's result per stage (the final stage's is its ordinary result) and deltas."""
    runs: dict[str, dict[str, BenchmarkResult]] = {}
    for stage, f in stage_files:
        r = BenchmarkResult.model_validate_json(Path(f).read_text())
        runs.setdefault(r.benchmark, {})[stage] = r
    order = ["base"] + list(stages)
    out = {}
    for bench, by_stage in runs.items():
        if bench in benchmarks:
            by_stage[order[-1]] = benchmarks[bench]
        missing = [s for s in order if s not in by_stage]
        if missing:
            raise ValueError(f"per-stage benchmark {bench}: no result for stage(s) {missing}")
        ordered = {s: by_stage[s] for s in order}
        out[bench] = StageResults(stages=ordered, deltas={s: stage_delta(ordered["base"], ordered[s])
                                                          for s in order[1:]})
    return out


def build_results(cfg: ExperimentConfig, bench_files: list[Path], heldout_files: list[Path],
                  training_files: dict[str, Path], data_files: list[Path],
                  contamination_file: Path | None = None,
                  stage_bench_files: list[tuple[str, Path]] = ()) -> ModelResults:
    from envfactory.tracking import PARENT_ENV, git_sha

    benchmarks = {}
    for f in bench_files:
        r = BenchmarkResult.model_validate_json(f.read_text())
        benchmarks[r.benchmark] = r
    heldout = {}
    for f in heldout_files:
        d = json.loads(f.read_text())
        heldout[d["stage"]] = d
    training = {}
    for stage, f in training_files.items():
        d = json.loads(f.read_text())
        training[stage] = {k: v for k, v in d.items() if isinstance(v, (int, float, str)) or v is None}
    contamination = {}
    if contamination_file is not None:
        for bench, c in json.loads(contamination_file.read_text())["benchmarks"].items():
            contamination[bench] = {"checked": c["checked"], "reason": c.get("reason", ""), **c.get("counts", {})}
    stages = cfg.train.stages
    return ModelResults(contamination=contamination, per_stage=per_stage_results(benchmarks, stage_bench_files, stages),
        model=cfg.train.model, final_stage=stages[-1] if stages else "base", benchmarks=benchmarks,
        heldout=heldout, training=training, paper=paper_numbers(cfg.train.model),
        provenance=Provenance(
            experiment=cfg.experiment, config_hash=cfg.config_hash(),
            git_sha=git_sha(Path(__file__).resolve().parents[1]),
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            mlflow_parent_run_id=os.environ.get(PARENT_ENV), package_versions=package_versions(),
            data_checksums={str(p): file_sha256(p) for p in data_files}, llm_cache_keys=_count_cache(cfg),
            config=cfg.model_dump(mode="json")))


def headline_metrics(results: ModelResults) -> dict[str, float]:
    """Flat metrics under the same keys for every experiment: what MLflow compares and sweep reports plot.

    `heldout` (final stage) and `heldout.<stage>`: held-out environment success; `<bench>`: task-weighted score;
    `<bench>.<category>`: per category; `<bench>.<aggregate>`: the benchmark's own summary numbers (BFCL:
    `bfcl.overall`, `bfcl.multi_turn`, ...) when defined; `<bench>.delta.<stage>`: a per-stage benchmark's trained
    stage minus base. Unavailable benchmarks and null aggregates are absent,
    not zero (the results file keeps a null aggregate with its missing categories).
    """
    out: dict[str, float] = {}
    for stage, h in results.heldout.items():
        out[f"heldout.{stage}"] = float(h["success_rate"])
    if results.final_stage in results.heldout:
        out["heldout"] = out[f"heldout.{results.final_stage}"]
    for name, b in results.benchmarks.items():
        if b.status != "scored" or b.score is None:
            continue
        out[name] = float(b.score)
        for c in b.categories:
            out[f"{name}.{c.category}"] = float(c.score)
        for key, agg in b.aggregates.items():
            if agg.score is not None:
                out[f"{name}.{key}"] = float(agg.score)
    for name, ps in results.per_stage.items():
        for stage, d in ps.deltas.items():
            if d.delta is not None:
                out[f"{name}.delta.{stage}"] = float(d.delta)
    return out


def headline_labels(results: ModelResults) -> dict[str, str]:
    """The qualifiers of every headline metric, under the same keys (`replay-based`, `order-match
    (non-official)`, `smoke-sized n=6`, ...): MLflow tags, the sweep report and the ours-vs-paper table show them
    beside the numbers. A metric without a qualifier is absent."""
    from envfactory.stats import SMOKE_N

    out: dict[str, str] = {}
    for stage, h in results.heldout.items():
        n = int(h.get("episodes", 0))
        if n < SMOKE_N:
            out[f"heldout.{stage}"] = f"smoke-sized n={n}"
    if results.final_stage in results.heldout and f"heldout.{results.final_stage}" in out:
        out["heldout"] = out[f"heldout.{results.final_stage}"]
    for name, b in results.benchmarks.items():
        if b.status != "scored" or b.score is None:
            continue
        per_category = {c.category: c.labels() for c in b.categories}
        for category, labels in per_category.items():
            if labels:
                out[f"{name}.{category}"] = "; ".join(labels)
        n = sum(c.n for c in b.categories)
        overall = sorted({lab for labels in per_category.values() for lab in labels if not lab.startswith("smoke")})
        overall += [f"smoke-sized n={n}"] if n < SMOKE_N else []
        overall += ["task-weighted mean over categories"] if len(b.categories) > 1 else []
        if overall:
            out[name] = "; ".join(overall)
        for key, agg in b.aggregates.items():
            if agg.score is None:
                continue
            inherited = sorted({lab for c in agg.categories for lab in per_category.get(c, [])
                                if not lab.startswith("smoke")})
            labels = ([agg.label] if agg.label else []) + inherited + ([f"smoke-sized n={agg.n}"]
                                                                       if agg.n < SMOKE_N else [])
            if labels:
                out[f"{name}.{key}"] = "; ".join(labels)
    for name, ps in results.per_stage.items():
        for stage, d in ps.deltas.items():
            if d.delta is None:
                continue
            inherited = sorted({lab for c in ps.stages[stage].categories for lab in c.labels()
                                if not lab.startswith("smoke-sized")})
            out[f"{name}.delta.{stage}"] = "; ".join([f"{stage} - base", *inherited, *([d.label] if d.label else []),
                                                      *([f"smoke-sized n={d.n}"] if d.n < SMOKE_N else [])])
    return out


def write_results(results: ModelResults, out: Path) -> None:
    atomic_write_text(out, results.model_dump_json(indent=2))
