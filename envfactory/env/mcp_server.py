"""Expose a sandboxed environment as an MCP server (official `mcp` SDK, low-level server).

Tools are the environment's tools with their JSON schemas; a failed call is an
MCP tool result with `isError: true` and the structured error as JSON. The
current state is readable as the resource `state://current`, and a `reset`
is available as the resource template `state://reset/{scenario}`.

Bad input never takes the server down or touches the state: a line that is not
JSON-RPC is answered with a JSON-RPC error (-32700 / -32600, id null; the HTTP
transport does the same), an unknown resource or scenario with -32002 before
the sandbox is asked, bad arguments with a structured tool error.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from .package import EnvPackage
from .sandbox import SandboxedEnv, SandboxLimits

STATE_URI = "state://current"
RESET_PREFIX = "state://reset/"
RESOURCE_NOT_FOUND = -32002  # MCP's code for an unknown resource


class _AnswerMalformed:
    """The stdio transport's read stream, answering what is not a JSON-RPC message instead of dropping it.

    The SDK's stdio reader turns an unparsable line into an exception item that the server only
    logs, so the client would wait forever; here it gets the JSON-RPC error the HTTP transport sends.
    """

    def __init__(self, inner, write):
        self._inner, self._write = inner, write

    @property
    def last_context(self):
        return getattr(self._inner, "last_context", None)

    async def receive(self):
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            errors = item.errors() if hasattr(item, "errors") else []
            parse = bool(errors) and errors[0].get("type") == "json_invalid"
            error = types.ErrorData(code=types.PARSE_ERROR if parse else types.INVALID_REQUEST,
                                    message=f"Parse error: {errors[0].get('msg', '')}"[:200] if parse
                                    else "Invalid request: not a JSON-RPC 2.0 message")
            await self._write.send(SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=None, error=error)))

    async def aclose(self) -> None:
        await self._inner.aclose()

    def close(self) -> None:
        self._inner.close()

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


def build_server(package: EnvPackage, env: SandboxedEnv) -> Server:
    spec = package.spec
    lock = threading.Lock()  # one sandboxed instance behind the server: serialize calls

    def locked(fn, *args):
        with lock:
            return fn(*args)

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.input_schema)
            for t in spec.tools])

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        result = await anyio.to_thread.run_sync(locked, env.call, params.name, params.arguments or {})
        if "error" in result:
            return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(result))],
                                        structured_content=result, is_error=True)
        payload = {"result": result["ok"]}
        return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(result["ok"]))],
                                    structured_content=payload, is_error=False)

    async def list_resources(ctx, params) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[
            types.Resource(uri=STATE_URI, name="state", description=f"current state of {spec.name}",
                           mime_type="application/json")])

    scenarios = package.scenario_ids()

    async def read_resource(ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri.startswith(RESET_PREFIX):
            scenario = uri[len(RESET_PREFIX):]
            if scenario not in scenarios:  # checked here: an unknown name never reaches the environment
                raise MCPError(RESOURCE_NOT_FOUND, f"unknown scenario {scenario[:100]!r}; have {scenarios}")
            await anyio.to_thread.run_sync(locked, env.reset, scenario)
        elif uri != STATE_URI:
            raise MCPError(RESOURCE_NOT_FOUND, f"unknown resource {uri[:200]!r}; have {STATE_URI} and "
                                               f"{RESET_PREFIX}{{scenario}}")
        state = await anyio.to_thread.run_sync(locked, env.state)
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri=uri, mime_type="application/json", text=json.dumps(state))])

    return Server(f"envfactory-{spec.name}", version="1", instructions=spec.description,
                  on_list_tools=list_tools, on_call_tool=call_tool,
                  on_list_resources=list_resources, on_read_resource=read_resource)


def serve(package_dir: str | Path, transport: str = "stdio", host: str = "127.0.0.1", port: int = 8765,
          scenario: str | None = None, limits: SandboxLimits | None = None) -> None:
    package = EnvPackage(package_dir)
    with SandboxedEnv(package, limits) as env:
        env.reset(scenario or package.scenario_ids()[0])
        server = build_server(package, env)
        if transport == "stdio":
            from mcp.server.stdio import stdio_server

            async def main():
                async with stdio_server() as (read, write):
                    await server.run(_AnswerMalformed(read, write), write, server.create_initialization_options())

            anyio.run(main)
        elif transport == "http":
            import uvicorn

            uvicorn.run(server.streamable_http_app(host=host), host=host, port=port, log_level="warning")
        else:
            raise ValueError(f"unknown transport {transport!r} (stdio or http)")
