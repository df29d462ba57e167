"""Drive `envfactory envs serve` with a real MCP client session (stdio and streamable HTTP)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

BOOKING = {"guest_id": "G-0001", "hotel_id": "HTL-002", "room_type": "suite", "check_in": "2026-04-10", "nights": 2}


async def _exercise(session: ClientSession) -> None:
    await session.initialize()
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert {"search_hotels", "create_reservation", "cancel_reservation"} <= set(tools)
    assert tools["create_reservation"].input_schema["required"] == ["guest_id", "hotel_id", "room_type",
                                                                     "check_in", "nights"]
    ok = await session.call_tool("create_reservation", BOOKING)
    assert not ok.is_error
    assert json.loads(ok.content[0].text)["reservation_id"] == "RSV-00013"
    # The state changed: visible through the state resource and through a read tool.
    state = json.loads((await session.read_resource("state://current")).contents[0].text)
    assert state["reservations"]["RSV-00013"]["status"] == "confirmed"
    again = await session.call_tool("get_reservation", {"reservation_id": "RSV-00013"})
    assert json.loads(again.content[0].text)["guest_id"] == "G-0001"
    # Structured errors, not crashes.
    bad = await session.call_tool("create_reservation", {**BOOKING, "nights": "two"})
    assert bad.is_error
    assert json.loads(bad.content[0].text)["error"]["kind"] == "invalid_arguments"
    unknown = await session.call_tool("teleport", {})
    assert unknown.is_error and json.loads(unknown.content[0].text)["error"]["kind"] == "unknown_tool"
    refused = await session.call_tool("cancel_reservation", {"reservation_id": "RSV-99999"})
    assert json.loads(refused.content[0].text)["error"]["kind"] == "domain_error"
    # Reset through the resource template.
    reset = json.loads((await session.read_resource("state://reset/spring_iberia")).contents[0].text)
    assert "RSV-00013" not in reset["reservations"]


def test_stdio_session():
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "envfactory", "envs", "serve", "hotel_reservations",
                                         "--transport", "stdio", "--scenario", "spring_iberia"])

    async def main():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await _exercise(session)

    anyio.run(main)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamable_http_session():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "envfactory", "envs", "serve", "hotel_reservations",
                             "--transport", "http", "--port", str(port), "--scenario", "spring_iberia"])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, "server exited"
            time.sleep(0.2)
        else:
            pytest.fail("server did not start")

        async def main():
            async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write):
                async with ClientSession(read, write) as session:
                    await _exercise(session)

        anyio.run(main)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
