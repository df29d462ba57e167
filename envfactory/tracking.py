"""MLflow tracking: one parent run per Snakemake invocation, one nested run per rule.

The Snakefile's `onstart` opens the parent run and exports its id in
`ENVFACTORY_MLFLOW_PARENT_RUN`; each rule's process opens a nested run under
it (or a standalone run when invoked outside Snakemake); `onsuccess` /
`onerror` close the parent with its final status.

Sweep points add two levels: dag run -> one `sweep:<name>` run -> one run per
point (`<variant>-s<seed>`) -> its rule runs. Sweep and point runs are created
by the first rule that needs them (under a file lock, since rules run in
parallel processes), carry the point's axes as tags (`member_tags`), and get
the point's headline metrics under identical keys, so the MLflow UI compares
variants in one table.
"""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # nothing leaves the machine
os.environ.setdefault("DO_NOT_TRACK", "true")

PARENT_ENV = "ENVFACTORY_MLFLOW_PARENT_RUN"


def git_sha(cwd: str | Path | None = None) -> str:
    """The commit of the code that ran (not of the working directory, which may be any results folder)."""
    cwd = cwd or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _experiment_id(tracking) -> str:
    import mlflow

    if tracking.tracking_uri.startswith("sqlite:///"):
        db = Path(tracking.tracking_uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking.tracking_uri)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(tracking.experiment_name)
    if exp is not None:
        return exp.experiment_id
    artifacts = None
    if tracking.tracking_uri.startswith("sqlite:///"):
        artifacts = (db.parent / "artifacts").resolve().as_uri()
    return client.create_experiment(tracking.experiment_name, artifact_location=artifacts)


def _base_tags(cfg) -> dict[str, str]:
    from .sweep import member_tags

    return {"envfactory.experiment": cfg.experiment, "envfactory.config_hash": cfg.config_hash(),
            "envfactory.git_sha": git_sha(), **member_tags(cfg)}


@contextmanager
def _locked(cfg) -> Iterator[None]:
    """Serialize find-or-create of sweep/point runs across the rule processes of one results folder."""
    import fcntl

    lock = Path(cfg.results_dir) / ".mlflow-runs.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _find_or_create(client, exp_id: str, match: dict[str, str], name: str, tags: dict[str, str]) -> str:
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in match.items())
    found = client.search_runs([exp_id], filter_string=query, max_results=1)
    if found:
        return found[0].info.run_id
    return client.create_run(exp_id, run_name=name, tags={**tags, **match}).info.run_id


def point_run_id(cfg) -> str | None:
    """The run of a sweep point in this invocation (created on first use); None outside sweeps."""
    if cfg.sweep is None or not cfg.tracking.enabled:
        return None
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.tracking_uri)
    exp_id = _experiment_id(cfg.tracking)
    dag = os.environ.get(PARENT_ENV, "none")
    with _locked(cfg):
        sweep = _find_or_create(client, exp_id, {"envfactory.kind": "sweep", "envfactory.sweep": cfg.sweep.name,
                                                 "envfactory.dag_run": dag},
                                f"sweep:{cfg.sweep.name}", {} if dag == "none" else {"mlflow.parentRunId": dag})
        point = _find_or_create(client, exp_id, {"envfactory.kind": "point", "envfactory.point": str(cfg.out_dir()),
                                                 "envfactory.dag_run": dag},
                                cfg.experiment, {**_base_tags(cfg), "mlflow.parentRunId": sweep})
    return point


def log_summary(cfg, metrics: dict[str, float], params: dict[str, Any] | None = None,
                labels: dict[str, str] | None = None) -> str | None:
    """Headline metrics of one experiment: on its sweep-point run, else on the invocation's dag run; each
    metric's qualifiers (smoke-sized n, replay-based, ...) as the tag `label.<metric>`."""
    if not cfg.tracking.enabled:
        return None
    import mlflow

    run_id = point_run_id(cfg) or os.environ.get(PARENT_ENV)
    if run_id is None:
        return None
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.tracking_uri)
    ts = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, float(v), ts, 0) for k, v in metrics.items()],
                     params=[mlflow.entities.Param(k, str(v)) for k, v in (params or {}).items()],
                     tags=[mlflow.entities.RunTag(f"label.{k}", v) for k, v in (labels or {}).items()])
    return run_id


def start_parent_run(cfg, targets: list[str] | None = None) -> str | None:
    """Open the DAG-level run (does not make it active in this process); returns its id."""
    if not cfg.tracking.enabled:
        return None
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.tracking_uri)
    exp_id = _experiment_id(cfg.tracking)
    run = client.create_run(exp_id, run_name=f"dag:{cfg.experiment}",
                            tags={**_base_tags(cfg), "envfactory.kind": "dag",
                                  "envfactory.targets": ",".join(targets or [])})
    client.log_param(run.info.run_id, "config_hash", cfg.config_hash())
    client.log_param(run.info.run_id, "seed", cfg.seed)
    os.environ[PARENT_ENV] = run.info.run_id
    return run.info.run_id


def end_parent_run(cfg, status: str = "FINISHED") -> None:
    """Close the dag run and the sweep/point runs its rules opened (they all end with the invocation)."""
    run_id = os.environ.get(PARENT_ENV)
    if not run_id or not cfg.tracking.enabled:
        return
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.tracking_uri)
    children = client.search_runs([_experiment_id(cfg.tracking)], filter_string=f"tags.`envfactory.dag_run` = '{run_id}'")
    for child in children:
        client.set_terminated(child.info.run_id, status)
    client.set_terminated(run_id, status)


class RuleRun:
    """What a rule logs; a thin veneer over the active MLflow run."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.run_id: str | None = None

    def params(self, params: dict[str, Any]) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_params({k: (v if len(str(v)) < 500 else str(v)[:497] + "...") for k, v in params.items()})

    def metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_artifact(str(path), artifact_path=artifact_path)


@contextmanager
def rule_run(rule: str, cfg) -> Iterator[RuleRun]:
    """A run for one rule: nested under the DAG's parent run when there is one."""
    if not cfg.tracking.enabled:
        yield RuleRun(False)
        return
    import mlflow

    exp_id = _experiment_id(cfg.tracking)
    parent = point_run_id(cfg) or os.environ.get(PARENT_ENV)
    tags = {**_base_tags(cfg), "envfactory.kind": "rule", "envfactory.rule": rule}
    with mlflow.start_run(experiment_id=exp_id, run_name=rule, nested=bool(parent), parent_run_id=parent,
                          tags=tags) as run:
        logger = RuleRun(True)
        logger.run_id = run.info.run_id
        mlflow.log_params({"config_hash": cfg.config_hash(), "git_sha": _base_tags(cfg)["envfactory.git_sha"]})
        yield logger
