"""Fuzz `envfactory envs serve` over stdio and streamable HTTP (loopback only, bounded, seconds).

Every malformed or hostile input is answered with an error, the server stays up, and the
environment's state (`state://current`) is exactly what it was before.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envfactory.catalog import CATALOG_DIR
from envfactory.env.sandbox import SandboxedEnv
from envfactory.env.wire import MAX_FRAME

ROOT = Path(__file__).resolve().parents[1]
SERVE = [sys.executable, "-m", "envfactory", "envs", "serve", "hotel_reservations", "--scenario", "spring_iberia"]
PROTOCOL = "2025-06-18"
MCP_PARSE, MCP_INVALID_REQUEST, MCP_NO_METHOD, MCP_INVALID_PARAMS, MCP_NO_RESOURCE = (-32700, -32600, -32601, -32602,
                                                                                      -32002)
BOOKING = {"guest_id": "G-0001", "hotel_id": "HTL-002", "room_type": "suite", "check_in": "2026-04-10", "nights": 2}


def _req(i: int, method: str, params=None) -> bytes:
    msg = {"jsonrpc": "2.0", "id": i, "method": method}
    if params is not None:
        msg["params"] = params
    return json.dumps(msg).encode()


def _nested(depth: int):
    value = "HTL-002"
    for _ in range(depth):
        value = {"x": [value]}
    return value


# Not JSON-RPC at all: a JSON-RPC error with id null (parse error, invalid request; the HTTP transport's
# SDK code answers a valid-JSON non-message with -32602).
MALFORMED = {
    "not_json": b"{not json",
    "truncated": b'{"jsonrpc":"2.0","id":1,"method":',
    "binary": b"\xff\xfe\x00\x01garbage\x7f",
    "array": b"[]",
    "string": b'"tools/list"',
    "number": b"42",
    "no_method": b'{"jsonrpc":"2.0"}',
    "wrong_version": b'{"jsonrpc":"1.0","id":1,"method":"ping"}',
    "deep_nesting": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_hotel","arguments":'
                    + b"[" * 100_000 + b"]" * 100_000 + b"}}",
}
# Well-formed requests the server must refuse: (request, expected JSON-RPC error code or "tool" for a tool
# result with isError). Deep nesting below the parser's limit, huge and many arguments reach the sandbox.
REQUESTS = {
    "unknown_method": (_req(101, "environment/teleport"), MCP_NO_METHOD),
    "arguments_not_object": (_req(102, "tools/call", {"name": "get_hotel", "arguments": "HTL-002"}),
                             MCP_INVALID_PARAMS),
    "call_without_name": (_req(103, "tools/call", {"arguments": {}}), MCP_INVALID_PARAMS),
    "params_not_object": (_req(104, "tools/call", [1, 2, 3]), (MCP_INVALID_REQUEST, MCP_INVALID_PARAMS)),
    "reset_unknown_scenario": (_req(105, "resources/read", {"uri": "state://reset/no_such_scenario"}),
                               MCP_NO_RESOURCE),
    "reset_path_trick": (_req(106, "resources/read", {"uri": "state://reset/../summer_central_europe"}),
                         MCP_NO_RESOURCE),
    "reset_empty": (_req(107, "resources/read", {"uri": "state://reset/"}), MCP_NO_RESOURCE),
    "unknown_resource": (_req(108, "resources/read", {"uri": "file:///etc/passwd"}), MCP_NO_RESOURCE),
    "unknown_tool": (_req(109, "tools/call", {"name": "teleport", "arguments": {}}), "tool"),
    "wrong_type": (_req(110, "tools/call", {"name": "create_reservation", "arguments": {**BOOKING, "nights": "2"}}),
                   "tool"),
    "huge_argument": (_req(111, "tools/call", {"name": "get_hotel", "arguments": {"hotel_id": "H" * 3_000_000}}),
                      "tool"),
    "many_arguments": (_req(112, "tools/call", {"name": "get_hotel",
                                                "arguments": {f"k{i}": i for i in range(50_000)}}), "tool"),
    "nested_arguments": (_req(113, "tools/call", {"name": "get_hotel", "arguments": {"hotel_id": _nested(60)}}),
                         "tool"),
    "failing_write": (_req(114, "tools/call", {"name": "cancel_reservation",
                                               "arguments": {"reservation_id": "RSV-99999"}}), "tool"),
}


def _check(name: str, expected, answer: dict) -> None:
    if expected == "tool":
        assert "result" in answer and answer["result"]["isError"], (name, str(answer)[:500])
        kind = json.loads(answer["result"]["content"][0]["text"])["error"]["kind"]
        assert kind in ("unknown_tool", "invalid_arguments", "domain_error"), (name, kind)
    else:
        codes = expected if isinstance(expected, tuple) else (expected,)
        assert answer.get("error", {}).get("code") in codes, (name, str(answer)[:500])
        assert answer["error"]["message"]


def _check_malformed(name: str, answer: dict) -> None:
    assert (answer.get("id") is None
            and answer["error"]["code"] in (MCP_PARSE, MCP_INVALID_REQUEST, MCP_INVALID_PARAMS)), \
        (name, str(answer)[:500])


# ----------------------------------------------------------------------------- stdio


class StdioPeer:
    def __init__(self):
        self.proc = subprocess.Popen(SERVE + ["--transport", "stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=ROOT)
        self.buf = b""

    def send(self, line: bytes) -> None:
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "no answer from the stdio server"
            chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            assert chunk, f"the stdio server exited ({self.proc.poll()})"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def ask(self, line: bytes) -> dict:
        self.send(line)
        return self.receive()

    def state(self) -> dict:
        answer = self.ask(_req(9000, "resources/read", {"uri": "state://current"}))
        return json.loads(answer["result"]["contents"][0]["text"])


@pytest.fixture(scope="module")
def stdio_peer():
    peer = StdioPeer()
    init = peer.ask(_req(0, "initialize", {"protocolVersion": PROTOCOL, "capabilities": {},
                                          "clientInfo": {"name": "fuzz", "version": "0"}}))
    assert "result" in init, init
    peer.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    yield peer
    peer.proc.stdin.close()
    peer.proc.terminate()
    peer.proc.wait(timeout=20)


def test_stdio_fuzz(stdio_peer):
    peer = stdio_peer
    booked = peer.ask(_req(1, "tools/call", {"name": "create_reservation", "arguments": BOOKING}))
    assert not booked["result"]["isError"]
    before = peer.state()
    for name, line in MALFORMED.items():
        _check_malformed(name, peer.ask(line))
        assert peer.state() == before, name
    for name, (line, expected) in REQUESTS.items():
        _check(name, expected, peer.ask(line))
        assert peer.state() == before, name
    assert peer.ask(_req(2, "ping")) == {"jsonrpc": "2.0", "id": 2, "result": {}}
    assert peer.proc.poll() is None
    # Still serving: a good reset and a good call work after all of it.
    reset = peer.ask(_req(3, "resources/read", {"uri": "state://reset/spring_iberia"}))
    assert "RSV-00013" in before["reservations"] and "RSV-00013" not in json.loads(
        reset["result"]["contents"][0]["text"])["reservations"]
    again = peer.ask(_req(4, "tools/call", {"name": "create_reservation", "arguments": BOOKING}))
    assert json.loads(again["result"]["content"][0]["text"])["reservation_id"] == "RSV-00013"


# ----------------------------------------------------------------------------- streamable HTTP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpPeer:
    def __init__(self):
        self.port = _free_port()
        self.proc = subprocess.Popen(SERVE + ["--transport", "http", "--port", str(self.port)], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", self.port)) != 0:
            assert self.proc.poll() is None and time.monotonic() < deadline, "http server did not start"
            time.sleep(0.2)
        self.session: str | None = None

    def headers(self) -> dict:
        h = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
             "MCP-Protocol-Version": PROTOCOL}
        return {**h, "Mcp-Session-Id": self.session} if self.session else h

    def post(self, body: bytes) -> tuple[int, dict | None]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", "/mcp", body=body, headers=self.headers())
            r = conn.getresponse()
            text = r.read().decode("utf-8", "replace")
            self.session = r.getheader("mcp-session-id") or self.session
        finally:
            conn.close()
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        payload = data[-1] if data else text
        try:
            return r.status, json.loads(payload) if payload.strip() else None
        except ValueError:
            return r.status, {"raw": text}

    def ask(self, body: bytes) -> dict:
        return self.post(body)[1]

    def state(self) -> dict:
        answer = self.ask(_req(9000, "resources/read", {"uri": "state://current"}))
        return json.loads(answer["result"]["contents"][0]["text"])


@pytest.fixture(scope="module")
def http_peer():
    peer = HttpPeer()
    status, init = peer.post(_req(0, "initialize", {"protocolVersion": PROTOCOL, "capabilities": {},
                                                   "clientInfo": {"name": "fuzz", "version": "0"}}))
    assert status == 200 and "result" in init, init
    peer.post(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    yield peer
    peer.proc.terminate()
    peer.proc.wait(timeout=20)


def test_http_fuzz(http_peer):
    peer = http_peer
    booked = peer.ask(_req(1, "tools/call", {"name": "create_reservation", "arguments": BOOKING}))
    assert not booked["result"]["isError"]
    before = peer.state()
    for name, body in MALFORMED.items():
        status, answer = peer.post(body)
        assert status == 400, (name, status, answer)
        _check_malformed(name, answer)
        assert peer.state() == before, name
    for name, (body, expected) in REQUESTS.items():
        _check(name, expected, peer.ask(body))
        assert peer.state() == before, name
    # A body over the transport's size limit: refused by its declared length (413), before it is read.
    conn = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=60)
    conn.putrequest("POST", "/mcp")
    for k, v in {**peer.headers(), "Content-Length": str(64 << 20)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert peer.ask(_req(2, "ping"))["result"] == {}
    assert peer.proc.poll() is None and peer.state() == before


# ----------------------------------------------------------------------------- the sandbox behind both


def test_arguments_over_the_frame_limit_are_refused_without_touching_the_worker():
    with SandboxedEnv(CATALOG_DIR / "hotel_reservations") as env:
        env.reset("spring_iberia")
        before, pid = env.state_hash(), env.pid
        r = env.call("get_hotel", {"hotel_id": "H" * (MAX_FRAME + 1)})
        assert r["error"]["kind"] == "invalid_arguments" and "limit" in r["error"]["message"]
        assert env.pid == pid and env.restarts == 0 and env.state_hash() == before
        assert env.call("get_hotel", {"hotel_id": "HTL-002"})["ok"]["hotel_id"] == "HTL-002"
