"""MLflow tracking: one parent run per Snakemake invocation, one nested run per rule.

The Snakefile's `onstart` opens the parent run and exports its id in
`ENVFACTORY_MLFLOW_PARENT_RUN`; each rule's process opens a nested run under
it (or a standalone run when invoked outside Snakemake); `onsuccess` /
`onerror` close the parent with its final status.

A process killed outright (SIGKILL, the OOM killer, a lost node) cannot close its run, which would stay RUNNING
forever. Rule and dag runs therefore carry the process that owns them (`envfactory.process`: host, pid and start
time) and their output / working folder; `onerror` marks the rule runs its failed jobs left open KILLED, and the
next start of the same rule for the same folder (or of a dag in the same working folder) marks any RUNNING one
whose process is gone KILLED, with the reason in the tag `envfactory.closed_by`. Runs of another host count as
gone: Snakemake's directory lock lets only one invocation build a folder at a time.

Sweep points add two levels: dag run -> one `sweep:<name>` run -> one run per
point (`<variant>-s<seed>`) -> its rule runs. Sweep and point runs are created
by the first rule that needs them (under a file lock, since rules run in
parallel processes), carry the point's axes as tags (`member_tags`), and get
the point's headline metrics under identical keys, so the MLflow UI compares
variants in one table.
"""

from __future__ import annotations

import os
import socket
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


def _start_ticks(pid: int) -> str:
    """A process's start time (clock ticks since boot, /proc/<pid>/stat field 22): tells a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def process_id() -> str:
    """`host:pid:start` of this process, the owner of the runs it opens."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid())}"


def process_alive(ident: str) -> bool:
    """Whether the process behind a `process_id()` still runs (another host's: assumed gone, see the top)."""
    try:
        host, pid, ticks = ident.rsplit(":", 2)
        pid_n = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid_n, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return ticks == "?" or _start_ticks(pid_n) == ticks


def close_stale_runs(client, exp_id: str, match: dict[str, str], why: str) -> list[str]:
    """Mark KILLED the RUNNING runs matching `match` whose owning process is gone (and, for a dag run, its
    RUNNING sweep/point/rule runs); returns their ids."""
    if any("'" in v for v in match.values()):
        return []  # not expressible in a filter string; such runs stay as they are
    query = " and ".join([f"tags.`{k}` = '{v}'" for k, v in match.items()] + ["attributes.status = 'RUNNING'"])
    closed = []
    for run in client.search_runs([exp_id], filter_string=query, max_results=1000):
        owner = run.data.tags.get("envfactory.process")
        if owner is None or process_alive(owner):
            continue
        ids = [run.info.run_id]
        if run.data.tags.get("envfactory.kind") == "dag":  # its sweep/point runs, and rule runs of dead jobs
            ids += [r.info.run_id for r in client.search_runs(
                [exp_id], filter_string=f"tags.`envfactory.dag_run` = '{run.info.run_id}' and "
                                        "attributes.status = 'RUNNING'", max_results=1000)
                    if not process_alive(r.data.tags.get("envfactory.process", ""))]
        for run_id in ids:
            client.set_tag(run_id, "envfactory.closed_by", f"{why}: process {owner} is gone")
            client.set_terminated(run_id, "KILLED")
        closed += ids
    return closed


def member_tags(cfg) -> dict[str, str]:
    """What a sweep point is, as MLflow tags: the axes users filter and group runs by."""
    r = cfg.train.rl.reward
    terms = r.enabled()
    tags = {"envfactory.env_count": str(cfg.envs.count if cfg.envs.count is not None else "all"),
            "envfactory.reward_terms": "+".join(terms) or "none", "envfactory.reward_tau": r.tau,
            "envfactory.sampler": cfg.data.sampler, "envfactory.refine": str(cfg.data.refine).lower(),
            "envfactory.stages": "+".join(cfg.train.stages) or "base", "envfactory.seed": str(cfg.seed)}
    if cfg.sweep is not None:
        tags |= {"envfactory.sweep": cfg.sweep.name, "envfactory.variant": cfg.sweep.variant}
    return tags


def _base_tags(cfg) -> dict[str, str]:
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
    workdir = str(Path.cwd().resolve())
    close_stale_runs(client, exp_id, {"envfactory.kind": "dag", "envfactory.workdir": workdir},
                     "a later invocation in the same working folder found it RUNNING")
    run = client.create_run(exp_id, run_name=f"dag:{cfg.experiment}",
                            tags={**_base_tags(cfg), "envfactory.kind": "dag",
                                  "envfactory.targets": ",".join(targets or []), "envfactory.workdir": workdir,
                                  "envfactory.process": process_id()})
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
    children = client.search_runs([_experiment_id(cfg.tracking)],
                                  filter_string=f"tags.`envfactory.dag_run` = '{run_id}'")
    for child in children:
        if child.data.tags.get("envfactory.kind") == "rule":
            if child.info.status == "RUNNING":  # its process died without closing it (SIGKILL, OOM)
                client.set_tag(child.info.run_id, "envfactory.closed_by", f"dag run ended {status} with it open")
                client.set_terminated(child.info.run_id, "KILLED")
            continue
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
    out = str(cfg.out_dir().resolve())
    close_stale_runs(mlflow.MlflowClient(tracking_uri=cfg.tracking.tracking_uri), exp_id,
                     {"envfactory.kind": "rule", "envfactory.rule": rule, "envfactory.out": out},
                     "a later run of the rule found it RUNNING")
    tags = {**_base_tags(cfg), "envfactory.kind": "rule", "envfactory.rule": rule, "envfactory.out": out,
            "envfactory.process": process_id(),
            **({"envfactory.dag_run": os.environ[PARENT_ENV]} if os.environ.get(PARENT_ENV) else {})}
    with mlflow.start_run(experiment_id=exp_id, run_name=rule, nested=bool(parent), parent_run_id=parent,
                          tags=tags) as run:
        logger = RuleRun(True)
        logger.run_id = run.info.run_id
        mlflow.log_params({"config_hash": cfg.config_hash(), "git_sha": _base_tags(cfg)["envfactory.git_sha"]})
        yield logger
