"""The `envgen` rule: synthesize environments when an LLM provider is configured, else record why not."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..io import atomic_write_json, cache_root
from ..llm import LLMClient
from .outputs import SynthesisReport
from .pipeline import run_synthesis

if TYPE_CHECKING:  # the stage reads the config it is given; no run-time dependency on `envfactory.config`
    from ..config import ExperimentConfig

DOC_SUFFIXES = {".md", ".txt", ".json", ".yaml", ".yml", ".rst"}
SKIP_REASON = ("no LLM provider configured (envgen.provider is null): synthesis skipped; "
               "the experiment uses the bundled catalog only")


def llm_cache_dir(cfg: ExperimentConfig) -> Path:
    if cfg.envgen.cache_dir:
        return Path(cfg.envgen.cache_dir).expanduser()
    return cache_root() / "llm"


def read_documents(folder: str | None) -> list[str]:
    if not folder:
        return []
    paths = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in DOC_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"envgen.documents_dir {folder!r} holds no {sorted(DOC_SUFFIXES)} files")
    return [f"# {p.name}\n{p.read_text(errors='replace')}" for p in paths]


def run_envgen_stage(cfg: ExperimentConfig, out_dir: Path, client: LLMClient | None = None,
                     log=print) -> SynthesisReport:
    """Writes `<out_dir>/report.json` and, for verified environments, `<out_dir>/envs/<name>/`."""
    gen = cfg.envgen
    if gen.provider is None and client is None:
        log(f"[envgen] {SKIP_REASON}")
        report = SynthesisReport(status="skipped", reason=SKIP_REASON)
    else:
        client = client or LLMClient(gen.provider, llm_cache_dir(cfg), gen.cache_mode)
        report = run_synthesis(client, gen.seed_topics, read_documents(gen.documents_dir), gen.num_envs,
                               out_dir / "work", out_dir / "envs", cfg.envs.sandbox, gen.max_revise_rounds,
                               gen.min_scenarios, log)
        if report.verified:
            report.tokens_per_verified_env = round(report.tokens / report.verified, 1)
            report.cost_per_verified_env = round(report.cost_usd / report.verified, 6)
        log(f"[envgen] proposed {report.proposed}, verified {report.verified}, rejected {report.rejected}; "
            f"{report.tokens} tokens ({report.cached_calls}/{report.calls} calls from cache), ${report.cost_usd:.4f}")
    (out_dir / "envs").mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "report.json", report.model_dump(mode="json"))
    return report


def log_envgen_run(run, report: SynthesisReport, cache_mode: str, out_dir: Path) -> None:
    """The `envgen` stage's MLflow record (`run`: a `tracking.RuleRun`); counts only when synthesis ran."""
    run.params({"provider": report.provider or "none", "model": report.model or "none",
                "status": report.status, "cache_mode": cache_mode})
    if report.status == "ran":
        rounds = [e["revision_rounds"] for e in report.envs.values()]
        run.metrics({"proposed": report.proposed, "verified": report.verified, "rejected": report.rejected,
                     "tokens": report.tokens, "cost_usd": report.cost_usd, "llm_calls": report.calls,
                     "cached_calls": report.cached_calls, "wall_seconds": report.wall_seconds,
                     "mean_revision_rounds": sum(rounds) / len(rounds) if rounds else 0.0,
                     **({"tokens_per_verified_env": report.tokens_per_verified_env}
                        if report.tokens_per_verified_env is not None else {})})
    run.artifact(out_dir / "report.json")
