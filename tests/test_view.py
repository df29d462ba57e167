"""The static trajectory viewer: HTML content, escaping, the CLI, and a real headless-Chromium render."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from browser import chromium_command, parse_dom, png_info
from envfactory.cli import main
from envfactory.querygen.records import TrajectoryRecord
from envfactory.view import write_view

# If this ever ran, the page would be retitled and a marker element added (visible in --dump-dom).
PAYLOAD = "<script>document.title='PWNED';document.body.insertAdjacentHTML('beforeend','<b id=pwned></b>')</script>"


def _call(cid: str, name: str, args: dict) -> dict:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def _records() -> list[TrajectoryRecord]:
    ok = TrajectoryRecord(
        traj_id="t-ok", chain_id="c1", source="gold", envs=["hotel"], scenarios={"hotel": "s1"}, split="train",
        messages=[
            {"role": "system", "content": "You are a helpful agent."},
            {"role": "user", "content": "Book room 12 for Ada."},
            {"role": "assistant", "content": "",
             "tool_calls": [_call("a1", "book_room", {"room": 12, "guest": "Ada"})]},
            {"role": "tool", "tool_call_id": "a1", "content": json.dumps({"ok": {"booking": "B1", "note": PAYLOAD}})},
            {"role": "assistant", "content": "Booked room 12 (booking B1)."},
        ],
        tools=[], final_state_hash={"hotel": "ab"},
        state_diff={"hotel": [
            {"op": "changed", "path": ["rooms", "12", "status"], "before": "free", "after": "booked"},
            {"op": "added", "path": ["bookings", "B1"], "before": None, "after": {"room": 12, "guest": "Ada"}},
        ]})
    err = TrajectoryRecord(
        traj_id="t-err", chain_id="c2", source="teacher", envs=["hotel"], scenarios={"hotel": "s2"},
        split="heldout", ambiguity=2, matched=False,
        messages=[
            {"role": "user", "content": "Cancel booking B9."},
            {"role": "assistant", "content": "Cancelling.",
             "tool_calls": [_call("e1", "cancel_booking", {"id": "B9"})]},
            {"role": "tool", "tool_call_id": "e1",
             "content": json.dumps({"error": {"kind": "not_found", "message": "no booking B9 <b>here</b>"}})},
            {"role": "assistant", "content": "There is no booking B9."},
        ],
        tools=[], final_state_hash={"hotel": "cd"}, state_diff={})
    return [ok, err]


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    path = tmp_path / "trajectories.parquet"
    pq.write_table(pa.Table.from_pylist([r.to_row() for r in _records()]), path)
    return path


def test_html_content_and_escaping(parquet: Path, tmp_path: Path):
    out = write_view(parquet, tmp_path / "view.html")
    text = out.read_text()
    dom = parse_dom(text)
    assert dom.classes["trajectory"] == 2 and {"traj-t-ok", "traj-t-err"} <= dom.ids
    assert dom.classes["tool-call"] == 2 and dom.classes["tool-error"] == 1 and dom.classes["final"] == 2
    assert dom.classes["diff-row"] == 2 and dom.classes["state-diff"] == 1
    assert "trajectories: 2" in text and "gold=1, teacher=1" in text and "heldout=1, train=1" in text
    assert "matched: 1/2" in text
    assert "book_room" in text and "&quot;guest&quot;: &quot;Ada&quot;" in text   # pretty-printed arguments
    assert "not_found" in text and "rooms/12/status" in text and "Book room 12 for Ada." in text
    # Untrusted tool output is escaped: no script element, no injected markup.
    assert dom.tags["script"] == 0 and "<b>here</b>" not in text and "&lt;script&gt;" in text
    assert "http://" not in text and "https://" not in text   # self-contained

    one = write_view(parquet, tmp_path / "one.html", limit=1).read_text()
    assert parse_dom(one).classes["trajectory"] == 1


def test_cli_view(parquet: Path, tmp_path: Path, capsys):
    out = tmp_path / "cli.html"
    assert main(["view", str(parquet), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out and out.stat().st_size > 0
    assert main(["view", str(parquet)]) == 0
    assert parquet.with_suffix(".html").is_file()


def test_renders_in_headless_chromium(parquet: Path, tmp_path: Path):
    base = chromium_command(tmp_path)
    html = write_view(parquet, tmp_path / "view.html")
    url = html.resolve().as_uri()

    dump = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = parse_dom(dump.stdout)
    assert dom.classes["trajectory"] == 2 and dom.classes["tool-call"] == 2 and dom.classes["tool-error"] == 1
    assert dom.classes["diff-row"] == 2
    assert "pwned" not in dom.ids and "<title>PWNED" not in dump.stdout and dom.tags["script"] == 0

    shot = tmp_path / "shot.png"
    run = subprocess.run(base + [f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    data = shot.read_bytes()
    width, height, distinct = png_info(data)
    # A blank 1200x2000 page is already ~11 kB (4 distinct bytes); this page is ~110 kB (256 distinct).
    assert len(data) > 30_000 and (width, height) == (1200, 2000)
    assert distinct > 16
