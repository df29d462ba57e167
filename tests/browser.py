"""Headless Chromium for rendering tests: an offline, stateless browser, DOM parsing and PNG checks."""

from __future__ import annotations

import shutil
import struct
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest


def chromium_command(tmp_path: Path, size: str = "1200,2000") -> list[str]:
    """The browser with flags that keep it offline and stateless (no network services, throwaway profile)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("chromium not installed (.ci/run installs it)")
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={size}"]


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


def parse_dom(text: str) -> _Classes:
    p = _Classes()
    p.feed(text)
    return p


def png_info(data: bytes) -> tuple[int, int, int]:
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
