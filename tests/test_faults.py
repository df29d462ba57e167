"""Crash and fault tests (issue 15): kill -9 every DAG stage mid-way and re-run; a sandbox worker killed
mid-call; an LLM endpoint that times out, answers 500 or truncated JSON; a full disk under an output write;
MLflow runs of killed processes.

The DAG test kills one stage per invocation with `ENVFACTORY_FAULT=<point>` (envfactory/faults.py: the process
SIGKILLs itself after a checkpoint / partial output / complete temp file is on disk, before the final rename),
re-runs, and checks against an uninterrupted run of the same config: the stage's outputs are absent or complete,
finished stages are not re-run, the killed rule's MLflow run is not FINISHED and a new one is.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from envfactory.io import cache_root
from tests.conftest import make_package
from tests.test_dag import TINY_TRAINING, _snakemake

EXP = "faults"
BENCHES = ("bfcl", "tau2", "mcp_atlas", "vitabench", "capability")
# (rule, fault point, declared outputs under results/, MLflow rule run of the killed job or None)
STAGES = [
    ("resolved_config", f"write:{EXP}/config.json", [f"{EXP}/config.json"], None),  # a `run:` rule
    ("envgen", "write:envgen/report.json", [f"{EXP}/envgen/report.json"], "envgen"),
    ("envs", "envs:installed", [f"{EXP}/envs/manifest.json"], "envs"),
    ("graph", "write:graph/graph_report.json", [f"{EXP}/graph/graph.json"], "graph"),
    ("sample", "write:data/chains.parquet", [f"{EXP}/data/chains.parquet"], "sample"),
    ("queries", "write:data/queries.parquet", [f"{EXP}/data/queries.parquet"], "queries"),
    ("rollouts", "write:data/trajectories.parquet", [f"{EXP}/data/trajectories.parquet"], "rollouts"),
    ("datasets", "datasets:sft_written", [f"{EXP}/data/sft.parquet", f"{EXP}/data/rl.parquet"], "datasets"),
    ("sft", "sft:checkpointed", [f"{EXP}/train/sft/metrics.json"], "sft"),
    ("rl", "rl:checkpointed", [f"{EXP}/train/rl/metrics.json"], "rl"),
    ("eval_envs", "write:eval_envs/base.json", [f"{EXP}/train/eval_envs/{s}.json" for s in ("base", "sft", "rl")],
     "eval_envs_base"),
    ("eval_bench", "write:evals/bfcl.json", [f"{EXP}/evals/{b}.json" for b in BENCHES], "eval_bfcl"),
    ("eval_bench_stage", "write:evals/stages/base/capability.json",  # capability on base and sft (per_stage)
     [f"{EXP}/evals/stages/{s}/capability.json" for s in ("base", "sft")], "eval_capability_base"),
    ("contamination", "write:evals/contamination.json", [f"{EXP}/evals/contamination.json"], None),
    ("report", f"write:{EXP}/results.json", [f"{EXP}/results.json"], None),
    ("experiment_report", f"write:{EXP}/report.html", [f"{EXP}/report.html"], None),  # plots written, page not
    ("headline", "write:results/smollm2-135m.json", ["smollm2-135m.json"], None),  # a `run:` rule
]
MODELS = [f"{EXP}/train/{s}/model/model.safetensors" for s in ("sft", "rl")]
# FAULT_STAGES=envgen,sft: inject only there (the stages up to the last one named still run, plainly)
_ONLY = [s for s in os.environ.get("FAULT_STAGES", "").split(",") if s]
_LAST = max((i for i, s in enumerate(STAGES) if s[0] in _ONLY), default=len(STAGES) - 1)
# Timings, this process's own accounting (an RL stage resumed from its final checkpoint starts no sandbox worker)
# and the absolute working folder: everything else of an output must match the uninterrupted run.
VOLATILE = {"wall_s", "seconds", "replay_wall_s", "train_runtime_s", "train_runtime", "step_time", "created_at",
            "rollout/generate_s", "rollout/sync_s",  # GRPO's engine rollouts: wall-clock timings
            "sandbox_workers", "mlflow_parent_run_id",  # a new MLflow dag run per invocation
            "git_sha"}  # a commit may land during the ~10 minutes


def _config(workdir: Path) -> Path:
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump({
        "experiment": EXP, "envs": {"catalog": ["hotel_reservations", "cinema_tickets"]},
        "data": {"compare_random_walk": False, "attempts_per_tool": 10, "chains_per_tool": 2,
                 "heldout_envs": ["cinema_tickets"]},
        # relative: the same config.json in both working folders
        "tracking": {"tracking_uri": "sqlite:///mlruns/mlflow.db", "experiment_name": EXP}, **TINY_TRAINING}))
    return config


def _run(workdir: Path, *targets: str, fault: str | None = None, cores: int = 1,
         new_session: bool = False) -> subprocess.CompletedProcess:
    # The shared cache: the converted model and the benchmark venvs (as test_dag_reaches_the_headline_results).
    env = {"ENVFACTORY_CACHE": str(cache_root()), "ENVFACTORY_FAULT": fault or ""}
    return _snakemake(workdir, workdir / "config.yaml", *targets, env=env, cores=cores, timeout=1200,
                      new_session=new_session)


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _digest(path: Path, workdir: Path) -> str:
    if path.suffix == ".json":
        data = _strip(json.loads(path.read_text().replace(str(workdir.resolve()), "<workdir>")))
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Snakemake's 'Job stats' table: what this invocation scheduled."""
    text = proc.stdout + proc.stderr
    m = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal", text, re.S)
    if not m:
        return {}
    return {line.split()[0]: int(line.split()[1]) for line in m.group(1).splitlines() if line.strip()}


def _mtimes(workdir: Path, rels: list[str]) -> dict[str, int]:
    return {r: (workdir / "results" / r).stat().st_mtime_ns for r in rels if (workdir / "results" / r).exists()}


def _rule_runs(workdir: Path, rule: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(EXP)
    runs = client.search_runs([exp.experiment_id], f"tags.`envfactory.rule` = '{rule}'")
    return sorted(runs, key=lambda r: r.info.start_time)


def _all_runs(workdir: Path) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name(EXP).experiment_id], max_results=1000)


def _tail(workdir: Path, proc: subprocess.CompletedProcess) -> str:
    logs = workdir / "results" / EXP / "logs"
    tails = "".join(f"\n== {p.name}\n{p.read_text()[-1500:]}" for p in sorted(logs.glob("*.log"))) \
        if logs.is_dir() else ""
    return (proc.stdout + proc.stderr)[-4000:] + tails


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: the same config built in one go."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    _config(workdir)
    t0 = time.time()
    outs = [o for _, _, stage_outs, _ in STAGES[:_LAST + 1] for o in stage_outs]
    proc = _run(workdir, *([] if _LAST == len(STAGES) - 1 else [f"results/{o}" for o in outs]), cores=2)
    assert proc.returncode == 0, _tail(workdir, proc)
    digests = {r: _digest(workdir / "results" / r, workdir) for r in outs}
    digests.update({r: _digest(workdir / "results" / r, workdir) for r in MODELS if (workdir / "results" / r).exists()})
    return digests, round(time.time() - t0)


@pytest.mark.slow
def test_every_stage_survives_a_kill(tmp_path, uninterrupted):
    """Per stage: a run whose job is killed at the stage's fault point, then a plain re-run. A table of what was
    seen per stage is printed (-s) and written to <tmp>/fault_report.json."""
    reference, reference_s = uninterrupted
    _config(tmp_path)
    done: list[str] = []  # outputs of finished stages
    report = []
    t_all = time.time()
    for rule, point, outs, run_name in STAGES[:_LAST + 1]:
        if _ONLY and rule not in _ONLY:
            plain = _run(tmp_path, *[f"results/{o}" for o in outs])
            assert plain.returncode == 0, _tail(tmp_path, plain)
            done += outs
            continue
        row = {"rule": rule, "point": point}
        before = _mtimes(tmp_path, done)
        runs_before = {r.info.run_id for r in _all_runs(tmp_path)} if (tmp_path / "mlruns").exists() else set()

        t0 = time.time()
        killed = _run(tmp_path, *[f"results/{o}" for o in outs], fault=point)
        row["killed_s"] = round(time.time() - t0, 1)
        context = f"[{rule}] killed at {point}:\n{_tail(tmp_path, killed)}"
        logs = "".join(p.read_text() for p in (tmp_path / "results" / EXP / "logs").glob("*.log")) \
            if (tmp_path / "results" / EXP / "logs").is_dir() else ""
        assert killed.returncode != 0, context
        assert f"[faults] SIGKILL at {point}" in killed.stderr + logs, context  # the fault fired, in this stage
        assert set(_jobs(killed)) == {rule}, context  # nothing finished is scheduled again
        assert _mtimes(tmp_path, done) == before, context
        state = {}
        for o in outs:  # absent or complete: never a partial output
            path = tmp_path / "results" / o
            state[o] = "absent" if not path.exists() else "complete"
            if path.exists():
                assert _digest(path, tmp_path) == reference[o], f"{context}\npartial output {o}"
        row["outputs_after_kill"] = state
        if run_name is not None:
            runs = [r for r in _rule_runs(tmp_path, run_name) if r.info.run_id not in runs_before]
            assert runs, context
            row["killed_run_status"] = runs[-1].info.status
            assert runs[-1].info.status in ("KILLED", "FAILED"), context  # not left RUNNING forever
        t0 = time.time()
        again = _run(tmp_path, *[f"results/{o}" for o in outs])
        row["rerun_s"] = round(time.time() - t0, 1)
        context = f"[{rule}] re-run:\n{_tail(tmp_path, again)}"
        assert again.returncode == 0, context
        assert set(_jobs(again)) == {rule}, context
        assert _mtimes(tmp_path, done) == before, context  # finished upstream stages not re-run
        for o in outs:
            assert _digest(tmp_path / "results" / o, tmp_path) == reference[o], f"{context}\n{o} differs"
        if run_name is not None:
            runs = [r for r in _rule_runs(tmp_path, run_name) if r.info.run_id not in runs_before]
            assert [r.info.status for r in runs][-1] == "FINISHED", context
            assert all(r.info.status in ("KILLED", "FAILED") for r in runs[:-1]), [r.info.status for r in runs]
            row["runs"] = [r.info.status for r in runs]
        stray = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "results").rglob(".*.tmp"))
        assert not stray, f"{context}\ntemp files left: {stray}"
        done += outs
        report.append(row)

    for m in MODELS:  # the resumed checkpoints give the uninterrupted weights
        if m in reference:
            assert _digest(tmp_path / "results" / m, tmp_path) == reference[m], m
    runs = _all_runs(tmp_path)
    open_runs = [(r.info.run_name, r.info.status) for r in runs if r.info.status == "RUNNING"]
    assert not open_runs, open_runs  # nothing left RUNNING by the killed processes
    dags = [r for r in runs if r.data.tags.get("envfactory.kind") == "dag"]
    assert sum(r.info.status == "FAILED" for r in dags) == len(report)  # each killed job's invocation: onerror
    final = _run(tmp_path, *([] if _LAST == len(STAGES) - 1 else [f"results/{o}" for o in done]))
    assert final.returncode == 0 and "Nothing to be done" in final.stdout + final.stderr
    summary = {"stages": report, "reference_s": reference_s, "chain_s": round(time.time() - t_all),
               "dag_runs": {s: sum(r.info.status == s for r in dags) for s in ("FINISHED", "FAILED", "KILLED")}}
    (tmp_path / "fault_report.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


@pytest.mark.slow
def test_snakemake_killed_with_its_job_is_recovered(tmp_path, uninterrupted):
    """kill -9 of the whole process group mid-`envs` (Snakemake and the job: a lost node, the OOM killer): no
    onerror runs and the directory lock stays. After the `--unlock` Snakemake asks for, a re-run builds only
    `envs`; the dag and rule runs the dead processes left RUNNING are marked KILLED by the next invocation and
    the next run of the rule."""
    reference, _ = uninterrupted
    _config(tmp_path)
    target = f"{EXP}/envs/manifest.json"
    upstream = [f"{EXP}/config.json", f"{EXP}/envgen/report.json"]
    killed = _run(tmp_path, f"results/{target}", fault="envs:installed!group", new_session=True)
    assert killed.returncode == -signal.SIGKILL, _tail(tmp_path, killed)
    log = (tmp_path / "results" / EXP / "logs" / "envs.log").read_text()
    assert "[faults] SIGKILL at envs:installed (process group)" in log
    assert not (tmp_path / "results" / target).exists()
    assert all(_digest(tmp_path / "results" / u, tmp_path) == reference[u] for u in upstream)
    before = _mtimes(tmp_path, upstream)
    dead_dag = [r for r in _all_runs(tmp_path) if r.data.tags.get("envfactory.kind") == "dag"]
    dead_rule = _rule_runs(tmp_path, "envs")
    assert [r.info.status for r in dead_dag] == ["RUNNING"] and [r.info.status for r in dead_rule] == ["RUNNING"]

    locked = _run(tmp_path, f"results/{target}")
    assert locked.returncode != 0 and "cannot be locked" in locked.stdout + locked.stderr
    unlock = _snakemake(tmp_path, tmp_path / "config.yaml", "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    again = _run(tmp_path, f"results/{target}")
    assert again.returncode == 0, _tail(tmp_path, again)
    assert set(_jobs(again)) == {"envs"} and _mtimes(tmp_path, upstream) == before
    assert _digest(tmp_path / "results" / target, tmp_path) == reference[target]
    runs = {r.info.run_id: r for r in _all_runs(tmp_path)}
    old_dag, old_rule = runs[dead_dag[0].info.run_id], runs[dead_rule[0].info.run_id]
    assert old_dag.info.status == "KILLED" and "same working folder" in old_dag.data.tags["envfactory.closed_by"]
    assert old_rule.info.status == "KILLED" and "is gone" in old_rule.data.tags["envfactory.closed_by"]  # with its dag
    assert [r.info.status for r in _rule_runs(tmp_path, "envs")] == ["KILLED", "FINISHED"]
    assert not [r for r in runs.values() if r.info.status == "RUNNING"]


# ------------------------------------------------------------------------------------------- MLflow runs


def _tracking_cfg(tmp_path: Path):
    from envfactory.config import ExperimentConfig

    return ExperimentConfig.model_validate({
        "experiment": "t", "results_dir": str(tmp_path / "results"), "envs": {"catalog": ["hotel_reservations"]},
        "data": {"heldout_domains": []},
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment_name": "t"}})


_RULE_PROCESS = """
import os, sys, time
from envfactory.config import ExperimentConfig
from envfactory.tracking import rule_run
cfg = ExperimentConfig.model_validate_json(sys.argv[1])
with rule_run("sample", cfg) as run:
    print(run.run_id, flush=True)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), 9)
    time.sleep(120)
"""


def _rule_process(cfg, mode: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", _RULE_PROCESS, cfg.model_dump_json(), mode],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    run_id = proc.stdout.readline().strip()
    assert run_id, "the rule process did not open its run"
    return proc, run_id


def test_run_of_a_killed_rule_process_is_closed_by_the_next_start(tmp_path):
    """A SIGKILLed rule process leaves its run RUNNING; the next start of that rule for that folder marks it
    KILLED, and leaves alone a RUNNING one whose process is alive."""
    import mlflow

    from envfactory.tracking import rule_run

    cfg = _tracking_cfg(tmp_path)
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.tracking_uri)
    dead, dead_id = _rule_process(cfg, "kill")
    assert dead.wait(timeout=60) == -signal.SIGKILL
    assert client.get_run(dead_id).info.status == "RUNNING"  # what MLflow alone leaves behind
    alive, alive_id = _rule_process(cfg, "sleep")
    try:
        with rule_run("sample", cfg) as run:
            pass
        assert client.get_run(run.run_id).info.status == "FINISHED"
        old = client.get_run(dead_id)
        assert old.info.status == "KILLED" and "is gone" in old.data.tags["envfactory.closed_by"]
        assert client.get_run(alive_id).info.status == "RUNNING"  # its process still runs
    finally:
        alive.kill()
        alive.wait()


def test_failed_dag_closes_the_rule_runs_its_killed_jobs_left_open(tmp_path, monkeypatch):
    import mlflow

    from envfactory.tracking import PARENT_ENV, end_parent_run, rule_run, start_parent_run

    monkeypatch.chdir(tmp_path)
    cfg = _tracking_cfg(tmp_path)
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.tracking_uri)
    monkeypatch.setenv(PARENT_ENV, "")  # recorded, so the id start_parent_run exports is removed afterwards
    monkeypatch.delenv(PARENT_ENV)
    dag = start_parent_run(cfg)
    with rule_run("graph", cfg):
        pass
    dead, dead_id = _rule_process(cfg, "kill", {PARENT_ENV: dag})
    dead.wait(timeout=60)
    end_parent_run(cfg, "FAILED")  # the Snakefile's onerror
    assert client.get_run(dag).info.status == "FAILED"
    assert client.get_run(dead_id).info.status == "KILLED"
    finished = client.search_runs([client.get_experiment_by_name("t").experiment_id],
                                  "tags.`envfactory.rule` = 'graph'")
    assert [r.info.status for r in finished] == ["FINISHED"]  # a finished rule keeps its status


# ------------------------------------------------------------------------------------------- a full disk

_FILL = """
import errno, json, os, sys
from pathlib import Path
import pyarrow as pa
from envfactory.io import atomic_write_json
from envfactory.llm.cache import ResponseCache, cache_key
from envfactory.llm.types import ChatRequest, ChatResponse, Message
from envfactory.querygen.sampling import write_parquet

root = Path(sys.argv[1])
big = "x" * 300_000  # over the 256 KiB the disk (or the file size limit) allows
request = ChatRequest(model="m", messages=[Message(role="user", content="hi")])
key = cache_key("openai", "http://127.0.0.1:1/v1", request)
cache = ResponseCache(root / "llm")
writes = {  # output -> (an earlier version that fits, the write that does not)
    "out.json": (lambda p: atomic_write_json(p, {"v": 1}), lambda p: atomic_write_json(p, {"v": big})),
    "data/rows.parquet": (lambda p: write_parquet(pa.table({"v": ["a"]}), p),
                          lambda p: write_parquet(pa.table({"v": [os.urandom(64).hex() for _ in range(8000)]}), p)),
    "llm": (None, lambda p: cache.put(key, ChatResponse(content=big))),
}
seen = {}
for name, (first, second) in writes.items():
    path = root / name
    if first:
        first(path)
    old = path.read_bytes() if first else None
    try:
        second(path)
        seen[name] = {"error": None}
        continue
    except OSError as exc:
        seen[name] = {"errno": errno.errorcode.get(exc.errno), "message": str(exc)}
    folder = path.parent if first else path
    seen[name]["left"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    seen[name]["old_intact"] = (path.read_bytes() == old) if first else None
seen["llm"]["cached"] = cache.get(key) is not None
print(json.dumps(seen))
"""


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.parametrize("disk", ["tmpfs", "rlimit"])
def test_a_full_disk_fails_an_output_write_cleanly(tmp_path, disk):
    """ENOSPC from a real 256 KiB tmpfs (a private mount namespace: root or unprivileged user namespaces), or
    EFBIG from RLIMIT_FSIZE where no namespace may be made: a clear error naming the output, the earlier
    version intact, no partial or temp file, no LLM cache entry."""
    root = tmp_path / "disk"
    root.mkdir()
    if disk == "tmpfs":
        if not _can_mount_tmpfs():
            pytest.skip("no mount namespace here (unshare -Urm refused); the rlimit case covers the write path")
        cmd = ["unshare", "-Urm", "sh", "-c", 'mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" -B -c "$3" "$1"',
               "sh", str(root), sys.executable, _FILL]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        expected = "ENOSPC"
    else:
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a plain error instead of the default kill
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

        proc = subprocess.run([sys.executable, "-B", "-c", _FILL, str(root)], capture_output=True, text=True,
                              timeout=120, preexec_fn=limit)
        expected = "EFBIG"
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, out in seen.items():
        assert out.get("errno") == expected, (name, out)
        assert str(root / name) in out["message"], (name, out["message"])  # the error names the output
    assert seen["out.json"]["left"] == ["out.json"] and seen["out.json"]["old_intact"]
    assert seen["data/rows.parquet"]["left"] == ["rows.parquet"] and seen["data/rows.parquet"]["old_intact"]
    assert seen["llm"]["left"] == [] and seen["llm"]["cached"] is False


# ------------------------------------------------------------------------------------------- LLM endpoint

_COMPLETION = {"id": "c", "object": "chat.completion", "created": 0, "model": "m",
               "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "fine"}}],
               "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


class _Flaky(BaseHTTPRequestHandler):
    """An OpenAI chat-completions endpoint that misbehaves as `mode` says, then (mode 'ok') recovers."""
    mode = "ok"
    hits = 0

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["content-length"]))
        type(self).hits += 1
        body = json.dumps(_COMPLETION).encode()
        status, length = 200, None
        if self.mode == "timeout":
            time.sleep(1.0)  # past the client's timeout
        elif self.mode == "500":
            status, body = 500, b'{"error": {"message": "upstream crashed"}}'
        elif self.mode == "truncated":
            body = body[:57]  # a complete HTTP answer whose JSON stops mid-object
        elif self.mode == "cut":
            length = len(body)  # promise the whole body, send a third, hang up
            body = body[: len(body) // 3]
            self.close_connection = True
        elif self.mode == "not_a_completion":
            body = b'{"object": "error", "message": "model overloaded"}'
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(length or len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.mark.parametrize("mode,attempts,says", [
    ("timeout", 3, "after 3 attempts (max_retries=2): APITimeoutError"),
    ("500", 3, "after 3 attempts (max_retries=2): InternalServerError"),
    ("cut", 3, "after 3 attempts (max_retries=2): APIConnectionError"),
    ("truncated", 1, "not valid JSON (truncated?)"),
    ("not_a_completion", 1, "not a chat completion"),
])
def test_a_failing_llm_endpoint_is_a_clear_error_and_caches_nothing(tmp_path, flaky_api, monkeypatch, mode,
                                                                    attempts, says):
    from envfactory.llm import ChatRequest, LLMClient, Message, ProviderConfig
    from envfactory.llm.cache import ResponseCache
    from envfactory.llm.providers._common import LLMCallError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = ProviderConfig(name="openai", model="m", base_url=flaky_api, timeout_s=0.3, max_retries=2)
    client = LLMClient(cfg, tmp_path / "llm", "use")
    request = ChatRequest(model="m", messages=[Message(role="user", content="hi")])
    _Flaky.mode, _Flaky.hits = mode, 0
    with pytest.raises(LLMCallError) as err:
        client.chat(request)
    assert _Flaky.hits == attempts  # the SDK's retries where a retry can help, none where it cannot
    assert says in str(err.value) and "127.0.0.1" in str(err.value) and "'m'" in str(err.value)
    assert ResponseCache(tmp_path / "llm").keys() == []  # nothing cached for the failed request
    assert client.totals.calls == 0
    _Flaky.mode = "ok"  # the endpoint recovers: the same request is answered, and only now cached
    assert client.chat(request).content == "fine"
    assert len(ResponseCache(tmp_path / "llm").keys()) == 1


# ------------------------------------------------------------------------------------------- sandbox workers


def test_worker_killed_during_a_call_is_restarted_with_state_replayed(tmp_path):
    """tests/test_sandbox_hostile.py kills a worker between calls; here it dies while a call runs."""
    from envfactory.env.sandbox import SandboxedEnv

    pkg = make_package(tmp_path / "slow", "import time\ntime.sleep(3)\nself.state['counter'] += 100")
    with SandboxedEnv(pkg) as env:
        env.reset("default")
        assert env.call("bump", {}) == {"ok": {"counter": 1}}
        before = env.state_hash()
        victim = env.pid
        killer = threading.Timer(0.5, os.kill, (victim, signal.SIGKILL))
        killer.start()
        t0 = time.time()
        crashed = env.call("run", {})
        killer.join()
        assert time.time() - t0 < 3  # answered when the worker died, not after a timeout
        assert crashed["error"]["kind"] in ("worker_crashed", "resource_limit"), crashed  # SIGKILL reads as OOM
        assert env.restarts == 1 and env.pid != victim
        assert env.state_hash() == before  # the half-done call left nothing; the episode so far was replayed
        assert env.call("bump", {}) == {"ok": {"counter": 2}}


_DRIVER = """
import sys, time
from envfactory.env.sandbox import SandboxedEnv
env = SandboxedEnv(sys.argv[1])
env.reset("default")
print(env.pid, env.workdir, flush=True)
time.sleep(120)
"""


def test_worker_exits_when_its_driver_is_killed(tmp_path):
    """A stage process SIGKILLed mid-episode leaves no worker behind (it reads EOF and exits)."""
    pkg = make_package(tmp_path / "probe", "pass")
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, str(pkg)], stdout=subprocess.PIPE, text=True)
    pid, workdir = driver.stdout.readline().split()
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.time() + 10
    while time.time() < deadline and Path(f"/proc/{pid}").exists() and \
            Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
        time.sleep(0.1)
    alive = Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    shutil.rmtree(workdir, ignore_errors=True)  # the driver's cleanup never ran (see the README's Reliability)
    assert not alive, f"worker {pid} outlived its driver"


# ------------------------------------------------------------------------------------------- bad inputs


def test_unknown_catalog_names_are_config_errors_listing_the_valid_ones(tmp_path):
    from pydantic import ValidationError

    from envfactory.config import ExperimentConfig

    with pytest.raises(ValidationError, match=r"envs.catalog: unknown environments \['bookstor'\]; known: "
                                              r"\['bookstore', 'car_rental', .*'warehouse_inventory'\]"):
        ExperimentConfig.model_validate({"envs": {"catalog": ["hotel_reservations", "bookstor"]}})
    with pytest.raises(ValidationError, match=r"listed more than once: \['bookstore'\]"):
        ExperimentConfig.model_validate({"envs": {"catalog": ["bookstore", "bookstore"]},
                                         "data": {"heldout_domains": []}})
    assert ExperimentConfig.model_validate({"envs": {"catalog": "all"}}).envs.catalog == "all"
    # The DAG refuses it while parsing the config, before any job runs.
    config = tmp_path / "typo.yaml"
    config.write_text(yaml.safe_dump({"experiment": "typo", "envs": {"catalog": ["hotel_reservation"]},
                                      "data": {"heldout_domains": []}, "tracking": {"enabled": False}}))
    proc = _snakemake(tmp_path, config, "-n")
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert "unknown environments ['hotel_reservation']" in said and "'hotel_reservations'" in said
    assert not (tmp_path / "results").exists()


def test_env_count_over_the_training_envs_fails_the_envs_stage_listing_them(tmp_path):
    config = tmp_path / "count.yaml"
    config.write_text(yaml.safe_dump({
        "experiment": "count", "tracking": {"enabled": False},
        "envs": {"catalog": ["hotel_reservations", "cinema_tickets", "bookstore"], "count": 3},
        "data": {"heldout_envs": ["cinema_tickets"], "heldout_domains": []}}))
    out = tmp_path / "envs" / "manifest.json"
    proc = subprocess.run([sys.executable, "-m", "envfactory", "envs", "manifest", "--config", str(config),
                           "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode != 0
    assert ("envs.count=3 but only 2 verified training environments: ['bookstore', 'hotel_reservations'] "
            "(held-out ones are admitted besides and do not count: ['cinema_tickets'])") in proc.stderr
    assert not out.exists()
