from __future__ import annotations

import json
import subprocess
import sys

from envfactory.cli import main


def test_envs_list_json(capsys):
    assert main(["envs", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name", "domain", "tools", "scenarios", "verified"} == set(rows[0])
    assert len(rows) >= 14 and all(r["verified"] for r in rows)
    assert len({r["domain"] for r in rows}) >= 7


def test_envs_verify_exit_codes(tmp_path, capsys):
    from tests.conftest import make_package

    assert main(["envs", "verify", "hotel_reservations", "--report", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["failed"] == 0
    broken = make_package(tmp_path / "broken", "pass", prelude="raise SystemExit('nope')")
    (broken / "tests.json").write_text(json.dumps({"cases": [{"name": "x", "scenario": "default",
                                                              "steps": [{"tool": "bump"}]}]}))
    assert main(["envs", "verify", str(broken)]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "envfactory", "envs", "list", "--no-verify"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "hotel_reservations" in proc.stdout


def test_benchmarks_fetch_downloads_verifies_and_refuses_what_has_nothing_to_fetch(tmp_path, capsys):
    """`envfactory benchmarks fetch NAME DEST` (formerly `python -m evals.mcp_atlas fetch`): the registry names
    the fetcher; a checksum mismatch fails and leaves no file."""
    import hashlib

    import pytest

    src = tmp_path / "tasks.csv"
    src.write_text("TASK,PROMPT\nt1,hello\n")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "full"
    assert main(["benchmarks", "fetch", "mcp_atlas", str(dest), "--url", src.as_uri(), "--sha256", digest]) == 0
    assert (dest / "tasks.csv").read_bytes() == src.read_bytes()
    assert json.loads((dest / "source.json").read_text())["sha256"] == digest
    with pytest.raises(ValueError, match="checksum mismatch"):
        main(["benchmarks", "fetch", "mcp_atlas", str(tmp_path / "bad"), "--url", src.as_uri(), "--sha256", "0" * 64])
    assert not list((tmp_path / "bad").glob("tasks.*"))
    with pytest.raises(SystemExit, match="no data to fetch"):
        main(["benchmarks", "fetch", "vitabench", str(tmp_path / "v")])
    capsys.readouterr()
    assert main(["benchmarks", "list"]) == 0
    assert "mcp_atlas" in capsys.readouterr().out
