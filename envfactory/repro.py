"""`envfactory repro RESULT.json`: re-run an experiment from a result file's provenance and diff the outcome.

The result file records the resolved config; repro writes it out, runs the same Snakefile on it with the
outputs relocated under `repro/` (the config hash ignores where outputs go, so it is unchanged), and compares
the new result with the recorded one: headline metrics (within a tolerance), data checksums, config hash,
and the code and package versions it ran with. Exit status 0 = reproduced, 1 = differs, 2 = could not run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from .config import ExperimentConfig
from .io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


class Difference(BaseModel):
    kind: str = Field(description="metric | data | config | code | package")
    key: str
    recorded: str | float | None
    reproduced: str | float | None


class ReproReport(BaseModel):
    recorded: str
    reproduced: str
    reproduced_ok: bool = Field(description="metrics and data identical within tolerance")
    tolerance: float
    metrics_compared: int
    differences: list[Difference]
    warnings: list[Difference] = Field(default_factory=list, description="code/package drift: explains, not fails")


def _relative_checksums(checksums: dict[str, str], out_dir: str) -> dict[str, str]:
    """Data checksums keyed by path inside the experiment folder, so relocated runs compare."""
    prefix = out_dir.rstrip("/") + "/"
    return {k.removeprefix(prefix): v for k, v in checksums.items()}


def compare_results(recorded, reproduced, tolerance: float = 0.0) -> ReproReport:
    """Pure comparison of two ModelResults (evals.report)."""
    from evals.report import headline_metrics

    diffs, warns = [], []
    a, b = headline_metrics(recorded), headline_metrics(reproduced)
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b or abs(a[key] - b[key]) > tolerance:
            diffs.append(Difference(kind="metric", key=key, recorded=a.get(key), reproduced=b.get(key)))
    ca = _relative_checksums(recorded.provenance.data_checksums, _out_dir(recorded))
    cb = _relative_checksums(reproduced.provenance.data_checksums, _out_dir(reproduced))
    for key in sorted(set(ca) | set(cb)):
        if ca.get(key) != cb.get(key):
            diffs.append(Difference(kind="data", key=key, recorded=ca.get(key), reproduced=cb.get(key)))
    if recorded.provenance.config_hash != reproduced.provenance.config_hash:
        diffs.append(Difference(kind="config", key="config_hash", recorded=recorded.provenance.config_hash,
                                reproduced=reproduced.provenance.config_hash))
    if recorded.provenance.git_sha != reproduced.provenance.git_sha:
        warns.append(Difference(kind="code", key="git_sha", recorded=recorded.provenance.git_sha,
                                reproduced=reproduced.provenance.git_sha))
    pa, pb = recorded.provenance.package_versions, reproduced.provenance.package_versions
    for name in sorted(set(pa) | set(pb)):
        if pa.get(name) != pb.get(name):
            warns.append(Difference(kind="package", key=name, recorded=pa.get(name), reproduced=pb.get(name)))
    return ReproReport(recorded="", reproduced="", reproduced_ok=not diffs, tolerance=tolerance,
                       metrics_compared=len(set(a) | set(b)), differences=diffs, warnings=warns)


def _out_dir(results) -> str:
    return str(ExperimentConfig.model_validate(results.provenance.config).out_dir())


def relocated_config(recorded_config: dict, prefix: str = "repro") -> ExperimentConfig:
    """The recorded config with outputs under `<prefix>/`; everything that defines the experiment unchanged."""
    cfg = ExperimentConfig.model_validate(recorded_config)
    return cfg.model_copy(update={"results_dir": f"{prefix}/{cfg.results_dir}"})


def _check_default_merge(cfg: ExperimentConfig, snakefile_dir: Path) -> None:
    """Snakemake merges --configfile over config/config.yaml key by key; refuse if that would change the config."""
    from .sweep import deep_merge

    default = yaml.safe_load((snakefile_dir / "config" / "config.yaml").read_text()) or {}
    merged = ExperimentConfig.model_validate(deep_merge(default, cfg.model_dump(mode="json")))
    if merged.model_dump(mode="json") != cfg.model_dump(mode="json"):
        raise ValueError("the recorded config cannot be passed through the Snakefile unchanged (a mapping in "
                         "config/config.yaml has keys the recorded one lacks, e.g. evaluation.categories)")


def repro(result_file: Path, cores: str = "all", prefix: str = "repro", tolerance: float = 0.0,
          snakefile: Path = ROOT / "Snakefile", extra: list[str] | None = None, log=print) -> int:
    from evals.report import ModelResults

    recorded = ModelResults.model_validate_json(Path(result_file).read_text())
    if not recorded.provenance.config:
        log(f"{result_file}: no resolved config in its provenance (written before schema v1?); cannot re-run")
        return 2
    cfg = relocated_config(recorded.provenance.config, prefix)
    try:
        _check_default_merge(cfg, snakefile.parent)
    except ValueError as e:
        log(f"cannot reproduce through Snakemake: {e}")
        return 2
    out_dir = cfg.out_dir()
    config_path = Path(prefix) / f"{cfg.experiment}.config.json"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config_path, cfg.model_dump(mode="json"))
    target = f"{out_dir}/results.json"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--cores", cores, target,
           "--configfile", str(config_path), *(extra or [])]
    log("$ " + " ".join(cmd))
    if subprocess.run(cmd).returncode != 0:
        log(f"the re-run failed; logs in {out_dir}/logs/")
        return 2
    reproduced = ModelResults.model_validate_json(Path(target).read_text())
    report = compare_results(recorded, reproduced, tolerance).model_copy(
        update={"recorded": str(result_file), "reproduced": target})
    atomic_write_json(out_dir / "repro.json", report.model_dump(mode="json"))
    for w in report.warnings:
        log(f"note: {w.kind} {w.key}: recorded {w.recorded}, now {w.reproduced}")
    for d in report.differences:
        log(f"DIFF {d.kind} {d.key}: recorded {d.recorded}, reproduced {d.reproduced}")
    log(f"{'reproduced' if report.reproduced_ok else 'NOT reproduced'}: {report.metrics_compared} metrics "
        f"(tolerance {tolerance}), {len(report.differences)} differences; report {out_dir / 'repro.json'}")
    return 0 if report.reproduced_ok else 1

