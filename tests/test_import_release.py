"""`envfactory envs import-release` on a miniature release (tests/fixtures/release, written for these tests in the
real release's shape): faithful tool surface, executed validation cases, determinism, offline-ness, a clear
verdict per environment for every kind of bad input, resumable output, and what downstream stages see."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from envfactory.cli import main
from envfactory.config import ExperimentConfig
from envfactory.env.cases import CaseSet
from envfactory.env.importer.static import analyze_module
from envfactory.env.manifest import build_manifest
from envfactory.env.package import EnvPackage, known_envs
from envfactory.env.sandbox import SandboxedEnv
from envfactory.env.verify import verify_package

RELEASE = Path(__file__).parent / "fixtures" / "release"
EXPECTED = {  # release name -> (status, cause)
    "TaskBoard": ("verified", "ok"),
    "Lottery": ("verified", "ok"),
    "LiveQuotes": ("imported", "network"),
    "Vault": ("imported", "load_only"),
    "Guestbook": ("imported", "accepts_invalid_scenario"),
    "Broken": ("rejected", "syntax_error"),
    "CorruptCheckpoint": ("rejected", "corrupt_json"),
    "Ghost": ("rejected", "missing_module"),
    "Empty": ("rejected", "no_scenarios"),
}


def _import(capsys, *args) -> tuple[int, str]:
    rc = main(["envs", "import-release", *map(str, args)])
    return rc, capsys.readouterr().out


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("cache")
        mp.setenv("ENVFACTORY_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def imported(tmp_path_factory, cache) -> tuple[Path, dict, int, str]:
    """The fixture release imported once through the CLI: (out dir, report, exit code, stdout)."""
    out = tmp_path_factory.mktemp("imported") / "paper_release"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["envs", "import-release", str(RELEASE), "--out", str(out)])
    return out, json.loads((out / "import_report.json").read_text()), rc, buf.getvalue()


def _record(report: dict, name: str) -> dict:
    return next(e for e in report["envs"] if e["name"] == name)


def test_every_environment_gets_a_verdict_and_a_one_line_reason(imported):
    out, report, rc, stdout = imported
    assert rc == 0  # some environments import: success without --strict
    got = {e["name"]: (e["status"], e["cause"]) for e in report["envs"]}
    assert got == EXPECTED
    assert report["counts"] == {"environments": 9, "verified": 2, "imported": 3, "rejected": 4}
    for e in report["envs"]:
        line = e["message"]
        assert line and "\n" not in line and "Traceback" not in line
        assert f"{e['name']:28s} {e['status']}" in stdout  # one summary line per environment
    assert "line 11" in _record(report, "Broken")["message"] and "Broken.py" in _record(report, "Broken")["message"]
    corrupt = _record(report, "CorruptCheckpoint")["message"]
    assert "CorruptCheckpoint_checkpoint.json" in corrupt and "line 3 column" in corrupt
    assert "tools/Ghost.py" in _record(report, "Ghost")["message"]
    assert "Empty_checkpoint.json" in _record(report, "Empty")["message"]
    live = _record(report, "LiveQuotes")["message"]
    assert "urllib.request.urlopen" in live and "line 26" in live
    # tool names are known from the metadata even where the environment could not be imported
    assert _record(report, "Ghost")["tool_names"] == ["haunt", "vanish", "rattle_chains"]


def test_verified_packages_are_ordinary_packages_the_rest_is_set_aside(imported):
    out, report, *_ = imported
    assert sorted(p.name for p in out.iterdir() if (p / "spec.json").is_file()) == ["lottery", "task_board"]
    assert sorted(p.name for p in (out / "rejected").iterdir()) == ["guestbook", "live_quotes", "vault"]
    for name in ("lottery", "task_board"):
        pkg = EnvPackage(out / name)
        assert pkg.scenario_ids() and CaseSet.model_validate(pkg.tests()).cases
        assert verify_package(pkg).verified  # what the envs stage runs, in a fresh worker
    # what is set aside does not verify by accident, and says why
    aside = verify_package(EnvPackage(out / "rejected" / "guestbook"))
    assert not aside.verified and "accepts_invalid_scenario" in " ".join(aside.problems)
    # the released module is shipped unchanged
    assert (out / "task_board" / "paper_env.py").read_bytes() == (RELEASE / "envs/tools/TaskBoard.py").read_bytes()


def test_tool_surface_is_the_servers_functions(imported):
    out, report, *_ = imported
    pkg = EnvPackage(out / "task_board")
    spec = pkg.spec
    assert [t.name for t in spec.tools] == ["add_task", "complete_task", "reassign_task", "get_task",
                                            "count_open_tasks"]
    assert "load_scenario" not in {t.name for t in spec.tools}  # reset and snapshot, not tools
    assert spec.class_name == "TaskBoard"
    fixes = " ".join(_record(report, "TaskBoard")["fixes"])
    assert "TaskBoardAPI" in fixes  # found by load_scenario/save_scenario, not by class_name
    assert "taskId is the function's task_id" in fixes
    with SandboxedEnv(pkg) as env:
        env.reset("scenario_001")
        before = env.state_hash()
        # the wrapper fills the default the class method requires (calling the method would raise TypeError)
        added = env.call("add_task", {"title": "Write minutes", "assignee": "M002"})
        assert added == {"ok": {"task_id": "T002", "priority": 3, "created_at": "2026-01-02T09:15:00"}}
        # a tool that exists only as an @mcp.tool() function
        assert env.call("count_open_tasks", {"assignee": "M002"}) == {"ok": {"open_tasks": 1}}
        # the metadata's camelCase parameters reach the function's snake_case ones
        moved = env.call("reassign_task", {"taskId": "T002", "newAssignee": "M001"})
        assert moved == {"ok": {"task_id": "T002", "assignee": "M001"}}
        # its own checks refuse bad input as a domain error, and the failed call leaves the state alone
        mid = env.state_hash()
        refused = env.call("add_task", {"title": "x", "assignee": "M002", "priority": 9})
        assert refused["error"]["kind"] == "domain_error" and "between 1 and 5" in refused["error"]["message"]
        assert env.call("add_task", {"title": "x"})["error"]["kind"] == "invalid_arguments"
        assert env.state_hash() == mid != before
        assert env.call("count_open_tasks", {"assignee": "M002"}) == {"ok": {"open_tasks": 0}}
        env.reset("scenario_001")
        assert env.state_hash() == before
        state = env.state()
    assert state["current_time"] == "2026-01-02T09:15:00"  # filled: the checkpoint predates the field


def test_validation_executes_tools_and_checks_determinism(imported):
    out, report, *_ = imported
    rec = _record(report, "TaskBoard")
    assert rec["cases"]["tool_calls"] >= 3 and rec["cases"]["rejection"] == 1
    assert rec["cases"]["rejection_failed"] == 0  # the validation_error scenario fails to load
    assert rec["cases"]["passed"] == rec["cases"]["total"]
    cases = CaseSet.model_validate(EnvPackage(out / "task_board").tests()).cases
    tools = [c for c in cases if c.name.startswith("tool ")]
    assert {c.steps[0].tool for c in tools} == {t.name for t in EnvPackage(out / "task_board").spec.tools}
    det = [c for c in cases if c.name.startswith("determinism")]
    assert len(det) == 1 and det[0].expect_hash and len(det[0].steps) >= 3
    # a relaxed output schema where the code returns null for a string field
    get_task = EnvPackage(out / "task_board").spec.tool("get_task")
    assert get_task.output_schema["properties"]["note"]["type"] == ["string", "null"]
    # a tool with at least 3 cases even when it has fewer tools (Lottery: 3 tools -> 3 calls)
    assert _record(report, "Lottery")["cases"]["tool_calls"] >= 3
    lottery = CaseSet.model_validate(EnvPackage(out / "lottery").tests()).cases
    bought = next(c for c in lottery if c.name.startswith("tool buy_ticket")).steps[0]
    assert bought.args == {"player": bought.args["player"]} and bought.args["player"].startswith("player_")
    assert len(bought.expect_output["ticket_id"]) == 36  # a result (a uuid4), not a refusal
    assert "load_only" == _record(report, "Vault")["cause"]
    guestbook = _record(report, "Guestbook")
    assert guestbook["cases"]["rejection_failed"] == 1 and "malformed email" in guestbook["message"]


def test_nondeterministic_module_is_made_deterministic(imported):
    out, report, *_ = imported
    rec = _record(report, "Lottery")
    hazards = " ".join(rec["hazards"])
    assert "uuid.uuid4" in hazards and "random.sample" in hazards and "hash()" in hazards
    outputs = []
    for _ in range(2):  # two fresh workers: same ids, numbers and salted-hash codes
        with SandboxedEnv(EnvPackage(out / "lottery")) as env:
            env.reset("scenario_001")
            outputs.append([env.call("buy_ticket", {"player": "player_ana"}) for _ in range(3)] + [env.state_hash()])
    assert outputs[0] == outputs[1]
    assert len({o["ok"]["ticket_id"] for o in outputs[0][:3]}) == 3  # still distinct ids


def test_the_driver_never_imports_release_code(imported):
    out, *_ = imported
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None) or ""
        assert str(out) not in f and str(RELEASE) not in f
    assert "fastmcp" not in sys.modules
    assert not any(type(f).__name__ == "_ShimFinder" for f in sys.meta_path)


def test_rerun_is_idempotent_and_only_changed_inputs_are_redone(imported, tmp_path, capsys):
    out, report, *_ = imported
    release = tmp_path / "release"
    shutil.copytree(RELEASE, release)
    copy = tmp_path / "out"
    shutil.copytree(out, copy)

    def digest(root: Path) -> dict:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file() and ".import" not in p.parts
                and p.name != "import_report.json"}

    before = digest(copy)
    rc, stdout = _import(capsys, release, "--out", copy)
    assert rc == 0 and stdout.count("(unchanged, not redone)") == 9
    assert digest(copy) == before
    # an edited input is redone (and only it); --only restricts the run
    meta = release / "envs" / "metadata" / "Lottery_metadata.json"
    meta.write_text(meta.read_text().replace("A lottery desk", "A lottery kiosk"))
    rc, stdout = _import(capsys, release, "--out", copy, "--only", "Lottery", "TaskBoard")
    assert rc == 0 and stdout.count("(unchanged, not redone)") == 1 and "Lottery " in stdout
    assert "Broken" not in stdout
    new = json.loads((copy / "import_report.json").read_text())
    assert len(new["envs"]) == 9  # the report still lists every environment with a current record
    assert EnvPackage(copy / "lottery").spec.description == "A lottery kiosk selling tickets."


def test_exit_codes_and_bad_paths(tmp_path, capsys, cache):
    rc = main(["envs", "import-release", str(tmp_path / "nope"), "--out", str(tmp_path / "o1")])
    assert rc == 2 and "no such path" in capsys.readouterr().err
    rc = main(["envs", "import-release", str(RELEASE), "--out", str(tmp_path / "o2"), "--only", "Nope"])
    assert rc == 2 and "not in the release: Nope" in capsys.readouterr().err
    # nothing importable -> non-zero
    rc, stdout = _import(capsys, RELEASE, "--out", tmp_path / "o3", "--only", "Broken", "Ghost")
    assert rc == 1 and "syntax_error" in stdout
    # --strict: non-zero unless every environment verifies
    rc, _ = _import(capsys, RELEASE, "--out", tmp_path / "o4", "--only", "TaskBoard", "Vault", "--strict")
    assert rc == 1
    rc, _ = _import(capsys, RELEASE, "--out", tmp_path / "o4", "--only", "TaskBoard", "--strict")
    assert rc == 0


def test_import_folder_feeds_the_envs_stage_and_the_mirror_audit(imported, tmp_path):
    from evals.contamination import BenchData, BenchTool, build_report

    out, *_ = imported
    cfg = ExperimentConfig.model_validate({"experiment": "x", "tracking": {"enabled": False},
                                          "envs": {"catalog": ["hotel_reservations"], "extra_dirs": [str(out)]}})
    assert {"task_board", "lottery"} <= set(known_envs(cfg.envs.extra_dirs))
    manifest = build_manifest(cfg, tmp_path / "envs" / "manifest.json", log=lambda _: None)
    assert sorted(e.name for e in manifest.envs) == ["hotel_reservations", "lottery", "task_board"]
    # a benchmark backend sharing tool names: an admitted and a not-importable environment are flagged
    backend = [BenchTool(n, (), "planted", backend="bench/boards") for n in
               ("addTask", "complete_task", "get_task", "archive_task")]
    ghostly = [BenchTool(n, (), "planted", backend="bench/ghosts") for n in ("haunt", "vanish", "rattleChains")]
    report = build_report(tmp_path / "envs" / "manifest.json", loaders={},
                          extra={"bench": BenchData(tools=backend + ghostly)}, offered_dirs=[out])
    mirrors = {(m.env, m.backend, m.admitted) for m in report.benchmarks["bench"].mirrors}
    assert mirrors == {("task_board", "bench/boards", True), ("ghost", "bench/ghosts", False)}


def test_static_reading_finds_the_bindings_and_hazards():
    info = analyze_module((RELEASE / "envs/tools/TaskBoard.py").read_text())
    assert (info.state_class, info.instance) == ("TaskBoardAPI", "board")
    assert info.functions["add_task"].required == ["title", "assignee"]
    assert info.methods["add_task"].required == ["title", "assignee", "priority"]
    assert "count_open_tasks" in info.functions and "count_open_tasks" not in info.methods
    assert info.scenario_fields["current_time"].required
    kinds = {h.kind for h in analyze_module((RELEASE / "envs/tools/Lottery.py").read_text()).hazards}
    assert kinds == {"uuid", "random", "hash"}
    live = analyze_module((RELEASE / "envs/tools/LiveQuotes.py").read_text()).hazards
    assert [h.kind for h in live] == ["network"]
    with pytest.raises(SyntaxError):
        analyze_module((RELEASE / "envs/tools/Broken.py").read_text())
