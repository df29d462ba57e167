"""Synchronous access to stdio MCP servers through the official `mcp` client, for the (sync) agent loop.

One event loop runs in a background thread (an anyio blocking portal); each server is one
`stdio_client` + `ClientSession` held open there for the whole run. `call` returns the MCP result as
a plain dict, `{"content": [...], "isError": bool}` (the shape MCP-Atlas recorded), or a structured
`{"error": ...}` when the server is unreachable or a call times out; a timed-out server is stopped
and started afresh on its next call.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

_REPO_ROOT = str(Path(__file__).resolve().parents[2])


def server_params(module: str, env: dict[str, str], cwd: str | None = None) -> StdioServerParameters:
    """A project-owned server (`python -m evals.mcp_servers.x`), importable wherever the repo is."""
    return StdioServerParameters(command=sys.executable, args=["-m", module], cwd=cwd,
                                 env={"PYTHONPATH": _REPO_ROOT, "PYTHONDONTWRITEBYTECODE": "1", **env})


@asynccontextmanager
async def _connect(params: StdioServerParameters, errlog):
    async with stdio_client(params, errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            yield session, tools


class _Conn:
    def __init__(self, cm, session, tools):
        self.cm, self.session, self.tools = cm, session, tools


class MCPServers:
    """Named stdio MCP servers, started on first use (or together with `start`), closed on exit."""

    def __init__(self, params: dict[str, StdioServerParameters], call_timeout_s: float = 120.0,
                 log_path: str | os.PathLike | None = None):
        self.params = params
        self.call_timeout_s = call_timeout_s
        self._log = open(log_path, "a") if log_path else open(os.devnull, "w")  # noqa: SIM115 - closed in close()
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._conns: dict[str, _Conn] = {}

    def __enter__(self) -> MCPServers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self, name: str) -> _Conn:
        if name not in self._conns:
            self._conns[name] = self._start_one(name)
        return self._conns[name]

    def start(self, names: list[str]) -> None:
        """Start several servers at once (their start-up is mostly interpreter imports)."""
        todo = [n for n in names if n not in self._conns]
        with ThreadPoolExecutor(max(1, len(todo))) as pool:
            list(pool.map(self._open, todo))  # each registers itself, so a failure leaks none

    def _start_one(self, name: str) -> _Conn:
        cm = self._portal.wrap_async_context_manager(_connect(self.params[name], self._log))
        session, tools = cm.__enter__()
        return _Conn(cm, session, tools)

    def tools(self, name: str) -> list:
        return self._open(name).tools

    def _stop(self, name: str) -> None:
        conn = self._conns.pop(name, None)
        if conn is not None:
            try:
                conn.cm.__exit__(None, None, None)
            except Exception:  # noqa: BLE001 - a dead server is gone either way
                pass

    def call(self, name: str, tool: str, arguments: dict[str, Any]) -> dict:
        try:
            conn = self._open(name)
        except Exception as e:  # noqa: BLE001
            return {"error": {"kind": "server_unavailable", "message": f"MCP server {name!r} did not start: {e}"}}
        try:
            result = self._portal.call(partial(conn.session.call_tool, tool, arguments,
                                               read_timeout_seconds=self.call_timeout_s))
        except Exception as e:  # noqa: BLE001 - timeouts and transport failures become tool errors
            self._stop(name)
            return {"error": {"kind": "timeout" if "tim" in str(e).lower() else "server_error",
                              "message": f"{name}/{tool}: {e}"}}
        return {"content": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in result.content],
                "isError": bool(result.is_error)}

    def close(self) -> None:
        if len(self._conns) > 1:  # each server takes a moment to wind down: stop them together
            with ThreadPoolExecutor(len(self._conns)) as pool:
                list(pool.map(self._stop, list(self._conns)))
        for name in list(self._conns):
            self._stop(name)
        if self._portal_cm is not None:
            self._portal_cm.__exit__(None, None, None)
            self._portal_cm = None
        self._log.close()


class ServerSession:
    """Duck-typed session for `run_episode`: `.call(tool, arguments) -> dict` on one server."""

    def __init__(self, servers: MCPServers, name: str):
        self.servers, self.name = servers, name

    def call(self, tool: str, arguments: dict[str, Any]) -> dict:
        return self.servers.call(self.name, tool, arguments)
