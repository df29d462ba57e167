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
