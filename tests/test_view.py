"""The static trajectory viewer: HTML content, escaping, the CLI, and a real headless-Chromium render."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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
            {"role": "assistant", "content": "", "tool_calls": [_call("a1", "book_room", {"room": 12, "guest": "Ada"})]},
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
            {"role": "assistant", "content": "Cancelling.", "tool_calls": [_call("e1", "cancel_booking", {"id": "B9"})]},
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


class _Classes(HTMLParser):
    """Counts CSS classes and tags of a serialized DOM."""

    def __init__(self):
        super().__init__()
        self.classes: Counter[str] = Counter()
        self.tags: Counter[str] = Counter()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        a = dict(attrs)
        self.classes.update((a.get("class") or "").split())
        if a.get("id"):
            self.ids.add(a["id"])


def _parse(text: str) -> _Classes:
    p = _Classes()
    p.feed(text)
    return p


def test_html_content_and_escaping(parquet: Path, tmp_path: Path):
    out = write_view(parquet, tmp_path / "view.html")
    text = out.read_text()
    dom = _parse(text)
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
    assert _parse(one).classes["trajectory"] == 1


def test_cli_view(parquet: Path, tmp_path: Path, capsys):
    out = tmp_path / "cli.html"
    assert main(["view", str(parquet), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out and out.stat().st_size > 0
    assert main(["view", str(parquet)]) == 0
    assert parquet.with_suffix(".html").is_file()


def _png_info(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the decompressed pixel data) of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_renders_in_headless_chromium(parquet: Path, tmp_path: Path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("chromium not installed (.ci/run installs it)")
    html = write_view(parquet, tmp_path / "view.html")
    # Flags keep the browser offline and stateless: no network services, a throwaway profile.
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000"]
    url = html.resolve().as_uri()

    dump = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = _parse(dump.stdout)
    assert dom.classes["trajectory"] == 2 and dom.classes["tool-call"] == 2 and dom.classes["tool-error"] == 1
    assert dom.classes["diff-row"] == 2
    assert "pwned" not in dom.ids and "<title>PWNED" not in dump.stdout and dom.tags["script"] == 0

    shot = tmp_path / "shot.png"
    run = subprocess.run(base + [f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    data = shot.read_bytes()
    width, height, distinct = _png_info(data)
    # A blank 1200x2000 page is already ~11 kB (4 distinct bytes); this page is ~110 kB (256 distinct).
    assert len(data) > 30_000 and (width, height) == (1200, 2000)
    assert distinct > 16
