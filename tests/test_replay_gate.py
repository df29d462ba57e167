"""The replay gate of the `datasets` stage: every SFT and RL row re-executed in a fresh sandbox state must reach
its recorded final state hash, or the stage fails and writes no dataset (`data.min_replay_rate`)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from envfactory.cli import main
from envfactory.config import ExperimentConfig
from envfactory.env.manifest import admitted_packages, build_manifest
from envfactory.graph.stage import run_graph_stage
from envfactory.querygen import sampling, stages
from envfactory.querygen.datasets import RL_SCHEMA, SFT_SCHEMA
from envfactory.querygen.replay import ReplayGateError, replay_tables

QUIET = {"log": lambda _: None}


def _upstream(root: Path, cfg: dict) -> dict:
    """manifest + chains / queries / trajectories of a small offline pipeline (the stages the gate reads)."""
    cfg = ExperimentConfig.model_validate({"experiment": "replay", "tracking": {"enabled": False}, **cfg})
    manifest = root / "envs" / "manifest.json"
    build_manifest(cfg, manifest, **QUIET)
    d = root / "data"
    run_graph_stage(cfg, manifest, root / "graph" / "graph.json")
    sampling.run_sample_stage(cfg, manifest, root / "graph" / "graph.json", d / "chains.parquet", **QUIET)
    stages.run_queries_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet", **QUIET)
    stages.run_rollouts_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet", d / "trajectories.parquet",
                              **QUIET)
    return {"cfg": cfg, "manifest": manifest, "chains": d / "chains.parquet", "queries": d / "queries.parquet",
            "trajectories": d / "trajectories.parquet"}


SMALL_DATA = {"compare_random_walk": False, "attempts_per_tool": 15, "chains_per_tool": 3, "heldout_envs": []}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    return _upstream(tmp_path_factory.mktemp("replay"),
                     {"envs": {"catalog": ["hotel_reservations", "car_rental"]}, "data": SMALL_DATA})


def _datasets(up: dict, out: Path, chains: Path | None = None, **data) -> dict:
    cfg = up["cfg"].model_copy(update={"data": up["cfg"].data.model_copy(update=data)})
    return stages.run_datasets_stage(cfg, up["manifest"], chains or up["chains"], up["queries"], up["trajectories"],
                                     out, **QUIET)


def test_every_row_replays_and_the_tables_are_written(upstream, tmp_path):
    report = _datasets(upstream, tmp_path)
    assert report["sft_rows"] >= 20 and report["rl_rows"] >= 20
    assert report["replay_rate"] == report["replay_rate_sft"] == report["replay_rate_rl"] == 1.0
    assert report["replay_failures"] == []
    assert pq.read_table(tmp_path / "sft.parquet").num_rows == report["sft_rows"]
    assert pq.read_table(tmp_path / "rl.parquet").num_rows == report["rl_rows"]
    replay = json.loads((tmp_path / "replay_report.json").read_text())
    assert replay["passed"] and replay["replay_rows"] == {"sft": report["sft_rows"], "rl": report["rl_rows"]}
    assert replay["replay_equal"] == replay["replay_rows"]


def _tampered_chains(up: dict, out: Path) -> tuple[Path, str, str]:
    """chains.parquet with one chain's recorded final state hash changed and another's gold call pointed at a
    missing id; only their RL rows carry that (the SFT rows come from trajectories.parquet)."""
    rows = pq.read_table(up["chains"]).to_pylist()
    victim = rows[len(rows) // 2]
    victim["final_state_hash"] = json.dumps({e: "0" * 64 for e in json.loads(victim["final_state_hash"])})
    broken = next(r for r in rows if r is not victim and any(
        isinstance(v, str) and k.endswith("_id") for c in json.loads(r["calls"]) for k, v in c["arguments"].items()))
    calls = json.loads(broken["calls"])
    call = next(c for c in calls if any(isinstance(v, str) and k.endswith("_id") for k, v in c["arguments"].items()))
    call["arguments"] = {k: ("NO-SUCH-ID" if isinstance(v, str) and k.endswith("_id") else v)
                         for k, v in call["arguments"].items()}
    broken["calls"] = json.dumps(calls)
    path = out / "tampered_chains.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(up["chains"])), path)
    return path, victim["chain_id"], broken["chain_id"]


def test_tampered_rl_rows_fail_the_gate_and_no_dataset_is_written(upstream, tmp_path):
    chains, victim, broken = _tampered_chains(upstream, tmp_path)
    out = tmp_path / "data"
    out.mkdir()
    (out / "sft.parquet").write_text("stale")  # a previous run's table must not survive a failed gate
    with pytest.raises(ReplayGateError) as err:
        _datasets(upstream, out, chains)
    message = str(err.value)
    assert f"rl:{victim} (state_mismatch)" in message and f"rl:{broken} (call_error)" in message
    assert "2 failing rows" in message
    assert not (out / "sft.parquet").exists() and not (out / "rl.parquet").exists()
    replay = json.loads((out / "replay_report.json").read_text())
    assert not replay["passed"] and replay["replay_rate_sft"] == 1.0
    assert sorted((f["table"], f["row"], f["cause"]) for f in replay["replay_failures"]) == sorted(
        [("rl", victim, "state_mismatch"), ("rl", broken, "call_error")])
    assert next(f["detail"] for f in replay["replay_failures"] if f["row"] == broken).startswith("call ")
    n = replay["replay_rows"]["rl"]
    assert replay["replay_rate_rl"] == pytest.approx((n - 2) / n)

    # Below the measured rate the stage passes, reports the rate and names the rows.
    report = _datasets(upstream, out, chains, min_replay_rate=0.9)
    assert report["replay_rate"] == pytest.approx((2 * n - 2) / (2 * n))
    assert report["replay_rate_rl"] == pytest.approx((n - 2) / n)
    assert {f["row"] for f in report["replay_failures"]} == {victim, broken}
    assert (out / "sft.parquet").exists() and (out / "rl.parquet").exists()


def test_sft_rows_replay_recorded_errors_as_errors(upstream, tmp_path):
    """A teacher row may hold calls that failed (and were rolled back) or were never run; they replay as such."""
    _datasets(upstream, tmp_path)
    row = next(r for r in pq.read_table(tmp_path / "sft.parquet").to_pylist() if r["envs"] == ["hotel_reservations"])
    failed = [{"role": "assistant", "content": "", "tool_call_id": None, "tool_calls": [
                  {"id": "bad_1", "type": "function", "function": {"name": "get_hotel",
                                                                     "arguments": '{"hotel_id": "NO-SUCH-HOTEL"}'}},
                  {"id": "bad_2", "type": "function", "function": {"name": "no_such_tool", "arguments": "{}"}}]},
              {"role": "tool", "content": '{"error": {"kind": "domain_error", "message": "no such hotel"}}',
               "tool_call_id": "bad_1", "tool_calls": []},
              {"role": "tool", "content": '{"error": {"kind": "unknown_tool", "message": "unknown tool"}}',
               "tool_call_id": "bad_2", "tool_calls": []}]
    teacher = {**row, "traj_id": "t-teacher", "source": "teacher", "messages": row["messages"][:2] + failed
               + row["messages"][2:]}
    sft = pa.Table.from_pylist([teacher], schema=SFT_SCHEMA)
    rl = pa.Table.from_pylist([], schema=RL_SCHEMA)
    packages = admitted_packages(upstream["manifest"])
    assert replay_tables(sft, rl, packages)["replay_failures"] == []
    for i in (3, 4):  # the recording claims a call succeeded that cannot
        lying = {**teacher, "messages": [dict(m) for m in teacher["messages"]]}
        lying["messages"][i]["content"] = '{"ok": {}}'
        failures = replay_tables(pa.Table.from_pylist([lying], schema=SFT_SCHEMA), rl, packages)["replay_failures"]
        assert [(f["row"], f["cause"]) for f in failures] == [("t-teacher", "call_error")]


NONDET_ENV = '''
import random

from envfactory.env import Environment, ToolFailure


class TicketLottery(Environment):
    """Draws tickets for queues; the ticket number comes from an unseeded random generator (not allowed)."""
    name = "ticket_lottery"
    domain = "test"

    def list_queues(self) -> list:
        """All queues."""
        return [{"queue_id": q["queue_id"], "name": q["name"]} for q in self.state["queues"].values()]

    def draw_ticket(self, queue_id: str) -> dict:
        """Draw a ticket in a queue."""
        queue = self.state["queues"].get(queue_id)
        if queue is None:
            raise ToolFailure(f"no queue {queue_id}")
        number = random.randrange(10**9)
        queue["tickets"].append(number)
        return {"queue_id": queue_id, "ticket": number}
'''


def _nondeterministic_package(root: Path) -> Path:
    (root / "scenarios").mkdir(parents=True)
    (root / "env.py").write_text(NONDET_ENV)
    queue = {"type": "object", "properties": {"queue_id": {"type": "string"}, "name": {"type": "string"}},
             "required": ["queue_id", "name"]}
    spec = {"name": "ticket_lottery", "domain": "test", "description": "Ticket queues.", "class_name": "TicketLottery",
            "tools": [
                {"name": "list_queues", "description": "All queues.",
                 "output_schema": {"type": "array", "items": queue},
                 "input_schema": {"type": "object", "properties": {}, "required": [], "additionalProperties": False}},
                {"name": "draw_ticket", "description": "Draw a ticket in a queue.",
                 "input_schema": {"type": "object", "properties": {"queue_id": {"type": "string"}},
                                  "required": ["queue_id"], "additionalProperties": False},
                 "output_schema": {"type": "object", "properties": {"queue_id": {"type": "string"},
                                                                    "ticket": {"type": "integer"}}}}]}
    (root / "spec.json").write_text(json.dumps(spec))
    queues = {f"Q-{i}": {"queue_id": f"Q-{i}", "name": n, "tickets": []} for i, n in enumerate(["Support", "Sales"])}
    (root / "scenarios" / "default.json").write_text(json.dumps({"queues": queues}))
    (root / "tests.json").write_text(json.dumps({"cases": [{"name": "draw", "scenario": "default", "steps": [
        {"tool": "list_queues", "expect_len": 2},
        {"tool": "draw_ticket", "args": {"queue_id": "Q-0"}, "expect_subset": {"queue_id": "Q-0"}}]}]}))
    return root


def test_a_nondeterministic_extra_env_is_replayed_and_fails_the_cli_stage(tmp_path):
    package = _nondeterministic_package(tmp_path / "pkgs" / "ticket_lottery")
    up = _upstream(tmp_path, {"envs": {"catalog": ["hotel_reservations"], "extra_dirs": [str(package)]},
                              "data": SMALL_DATA})
    config = tmp_path / "config.json"
    config.write_text(up["cfg"].model_dump_json())
    out = tmp_path / "out"
    argv = ["data", "datasets", "--config", str(config), "--manifest", str(up["manifest"]), "--chains",
            str(up["chains"]), "--queries", str(up["queries"]), "--trajectories", str(up["trajectories"]),
            "--out", str(out)]
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert str(err.value).startswith("error: replay gate:")
    replay = json.loads((out / "replay_report.json").read_text())
    rows = {r["chain_id"]: r for r in pq.read_table(up["chains"]).to_pylist()}
    drawn = {cid for cid, r in rows.items() if '"draw_ticket"' in r["calls"]}
    assert drawn and {f["row"].removesuffix("-gold") for f in replay["replay_failures"]} == drawn
    assert {f["table"] for f in replay["replay_failures"]} == {"sft", "rl"}
    assert {f["cause"] for f in replay["replay_failures"]} == {"state_mismatch"}
    assert replay["replay_failures"][0]["row"] in str(err.value)
    assert 0 < replay["replay_rate"] < 1 and not (out / "sft.parquet").exists() and not (out / "rl.parquet").exists()
