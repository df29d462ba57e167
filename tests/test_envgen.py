"""EnvGen with the scripted provider: admission, revision, rejection, hostile code, cache replay, resume."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

from envfactory.config import ExperimentConfig
from envfactory.env.manifest import build_manifest
from envfactory.envgen.stage import run_envgen_stage
from envfactory.llm import CacheMiss, LLMClient, ProviderConfig
from envfactory.llm.providers.scripted import ScriptedProvider

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "envgen"))
import make_library as lib  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "envgen" / "library_scripted.json"


def config(tmp_path: Path, **envgen) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "experiment": "t", "envs": {"catalog": ["hotel_reservations"], "sandbox": {"call_timeout_s": 2.0}},
        "tracking": {"enabled": False},
        "envgen": {"provider": {"name": "scripted", "model": "scripted"}, "num_envs": 1,
                   "cache_dir": str(tmp_path / "llm-cache"), **envgen}})


def client_for(tmp_path: Path, script, mode: str = "use") -> LLMClient:
    cfg = ProviderConfig(name="scripted", model="scripted")
    return LLMClient(cfg, tmp_path / "llm-cache", mode, provider=ScriptedProvider(cfg, script))


def run(tmp_path: Path, script, out: str = "out", mode: str = "use", **envgen):
    client = client_for(tmp_path, script, mode)
    report = run_envgen_stage(config(tmp_path, **envgen), tmp_path / out, client=client, log=lambda _: None)
    return report, client


def with_implementation(code: str, scenarios=None) -> list[dict]:
    script = lib.responses()
    script[2] = {"match": {"step": "implement"},
                 "response": {"content": {"code": code, "scenarios": scenarios or lib.implementation()["scenarios"]}}}
    return script


def test_fixture_is_in_sync():
    assert json.loads(FIXTURE.read_text()) == json.loads(json.dumps(lib.responses()))


def test_first_try_pass_is_admitted_into_the_manifest(tmp_path):
    report, client = run(tmp_path, lib.responses())
    assert (report.proposed, report.verified, report.rejected) == (1, 1, 0)
    assert report.envs["library_loans"]["revision_rounds"] == 0
    assert report.tokens > 0 and report.tokens_per_verified_env == report.tokens
    assert (tmp_path / "out" / "envs" / "library_loans" / "env.py").is_file()
    manifest = build_manifest(config(tmp_path), tmp_path / "results" / "envs" / "manifest.json",
                              tmp_path / "out", log=lambda _: None)
    assert {e.name: e.source for e in manifest.envs} == {"hotel_reservations": "catalog",
                                                          "library_loans": "synthesized"}
    assert manifest.synthesis["status"] == "ran" and manifest.synthesis["verified"] == 1


def test_fail_revise_pass(tmp_path):
    report, client = run(tmp_path, lib.responses(buggy_first=True))
    env = report.envs["library_loans"]
    assert env["status"] == "verified" and env["revision_rounds"] == 1
    revise = [r for r in client.provider.requests if r.metadata["step"] == "revise"]
    assert len(revise) == 1
    assert "B001" in revise[0].messages[-1].content  # concrete failure fed back to the code agent


def test_gives_up_after_k_rounds(tmp_path):
    script = lib.responses(buggy_first=True)
    script[-1] = {"match": {"step": "revise"}, "response": {"content": {"code": lib.code(buggy=True)}}, "repeat": True}
    report, client = run(tmp_path, script, max_revise_rounds=2)
    env = report.envs["library_loans"]
    assert env["status"] == "rejected" and env["revision_rounds"] == 2
    assert "still failing after 2 revision rounds" in env["reasons"][0]
    assert not (tmp_path / "out" / "envs" / "library_loans").exists()


@pytest.mark.parametrize("code,expected", [
    ("def broken(:\n", "syntax error"),
    (lib.code() + "\nraise RuntimeError('import-time failure')\n", "failed to start"),
    (lib.code().replace("def list_member_loans", "def list_loans"), "not a method"),
    (lib.code().replace("def search_books(self, query: str)", "def search_books(self, text: str)")
     .replace("q = query.lower()", "q = text.lower()"), "not parameters"),
    (lib.code().replace("class LibraryLoans(Environment):", "class LibraryLoans:"), "must subclass"),
])
def test_broken_code_is_rejected_with_reason(tmp_path, code, expected):
    report, _ = run(tmp_path, with_implementation(code), max_revise_rounds=0)
    env = report.envs["library_loans"]
    assert env["status"] == "rejected"
    assert any(expected in r for r in env["reasons"]), env["reasons"]


ESCAPE = Path("/tmp") / f"envgen-escape-{uuid.uuid4().hex}"


@pytest.mark.parametrize("payload,expected", [
    ("import socket\nsocket.create_connection(('127.0.0.1', 80))", "is not allowed"),
    ("import os\nwhile True:\n    os.fork()", "is not allowed"),
    (f"open({str(ESCAPE)!r}, 'w').write('x')", "open() is not allowed"),
    ("().__class__.__base__.__subclasses__()", "is not allowed"),
    # Passes the static check: only the sandbox can stop these.
    ("while True:\n    pass", "time limit"),
    ("x = [0] * (10 ** 10)", "memory limit"),
])
def test_hostile_code_is_rejected_and_contained(tmp_path, payload, expected):
    hostile = lib.code().replace('        q = query.lower()\n',
                                 "".join(f"        {line}\n" for line in payload.splitlines())
                                 + "        q = query.lower()\n")
    report, _ = run(tmp_path, with_implementation(hostile), max_revise_rounds=0)
    env = report.envs["library_loans"]
    assert env["status"] == "rejected"
    assert any(expected in r for r in env["reasons"]), env["reasons"]
    assert not ESCAPE.exists()


def test_cache_replay_reproduces_the_run_exactly(tmp_path):
    first, _ = run(tmp_path, lib.responses(buggy_first=True), out="first")

    def must_not_be_called(request):
        raise AssertionError("replay called the model")

    second, client = run(tmp_path, must_not_be_called, out="second", mode="replay")
    assert second.verified == first.verified == 1
    assert second.tokens == 0 and second.cached_calls == second.calls == first.calls
    a, b = tmp_path / "first" / "envs" / "library_loans", tmp_path / "second" / "envs" / "library_loans"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert second.cache_keys == first.cache_keys

    with pytest.raises(CacheMiss):  # replay never silently calls a model
        run(tmp_path, must_not_be_called, out="third", mode="replay", seed_topics=["something new"])


def test_interrupted_run_resumes(tmp_path):
    class Interrupted(Exception):
        pass

    def dies_at_tests(request):
        if request.metadata["step"] == "tests":
            raise Interrupted()
        return next(r["response"] for r in lib.responses() if r["match"]["step"] == request.metadata["step"])

    with pytest.raises(Interrupted):
        run(tmp_path, dies_at_tests, mode="off")
    ckpt = json.loads((tmp_path / "out" / "work" / "library_loans" / "checkpoint.json").read_text())
    assert ckpt["spec"] and ckpt["implementation"] and ckpt["tests"] is None

    report, client = run(tmp_path, lib.responses(), mode="off")
    assert report.verified == 1
    assert [r.metadata["step"] for r in client.provider.requests] == ["tests"]  # nothing redone


def test_no_provider_means_skipped_and_said(tmp_path):
    cfg = ExperimentConfig.model_validate({"experiment": "t", "tracking": {"enabled": False}})
    report = run_envgen_stage(cfg, tmp_path / "out", log=lambda _: None)
    assert report.status == "skipped" and "no LLM provider" in report.reason
    assert json.loads((tmp_path / "out" / "report.json").read_text())["status"] == "skipped"


def test_cli_acceptance_command(tmp_path, monkeypatch):
    from envfactory.cli import main

    monkeypatch.setenv("ENVFACTORY_CACHE", str(tmp_path / "cache"))
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"experiment": "demo", "tracking": {"enabled": False}, "envgen": {"num_envs": 1}}))
    assert main(["envgen", "--config", str(cfg), "--out", str(tmp_path / "out"), "--provider", "scripted",
                 "--responses", str(FIXTURE)]) == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["verified"] == 1


def test_environments_are_synthesized_concurrently_with_their_own_accounting(tmp_path):
    two = {"proposals": [dict(lib.PROPOSALS["proposals"][0]),
                         {**lib.PROPOSALS["proposals"][0], "name": "book_lending"}]}
    script = [{"match": {"step": "propose"}, "response": {"content": two}}]
    script += [{**rule, "repeat": True} for rule in lib.responses()[1:]]
    cfg = ProviderConfig(name="scripted", model="scripted", concurrency=2)
    client = LLMClient(cfg, tmp_path / "llm-cache", "off", provider=ScriptedProvider(cfg, script))
    report = run_envgen_stage(config(tmp_path, num_envs=2), tmp_path / "out", client=client, log=lambda _: None)
    assert report.verified == 2 and set(report.envs) == {"library_loans", "book_lending"}
    per_env = [e["tokens"] for e in report.envs.values()]
    propose = client.totals.by_step["propose"]["tokens"]
    assert all(t > 0 for t in per_env) and sum(per_env) + propose == report.tokens
