"""Expose a sandboxed environment as an MCP server (official `mcp` SDK, low-level server).

Tools are the environment's tools with their JSON schemas; a failed call is an
MCP tool result with `isError: true` and the structured error as JSON. The
current state is readable as the resource `state://current`, and a `reset`
is available as the resource template `state://reset/{scenario}`.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server

from .package import EnvPackage
from .sandbox import SandboxedEnv, SandboxLimits

STATE_URI = "state://current"


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

    async def read_resource(ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri.startswith("state://reset/"):
            await anyio.to_thread.run_sync(locked, env.reset, uri.rsplit("/", 1)[1])
        elif uri != STATE_URI:
            raise ValueError(f"unknown resource {uri}")
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
                    await server.run(read, write, server.create_initialization_options())

            anyio.run(main)
        elif transport == "http":
            import uvicorn

            uvicorn.run(server.streamable_http_app(host=host), host=host, port=port, log_level="warning")
        else:
            raise ValueError(f"unknown transport {transport!r} (stdio or http)")
