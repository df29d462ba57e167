"""A small stdio MCP tool server on the low-level `mcp` Server, with explicit JSON schemas.

Explicit schemas (not signature-derived ones) keep each tool's input schema as the upstream server
publishes it. A handler returns text (or several texts, or a ready `CallToolResult`); raising
`ToolFailure` or any exception becomes an `isError` result with a message, as upstream servers do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import jsonschema
import mcp_types as types
from mcp.server.lowlevel import Server


class ToolFailure(Exception):
    """A failure reported to the agent with exactly this text (no prefix added)."""


@dataclass
class ToolDef:
    name: str
    description: str
    input_schema: dict[str, Any]
    fn: Callable[[dict[str, Any]], str | list[str] | types.CallToolResult]


def obj(properties: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if required:
        schema["required"] = required
    return schema


def text_result(texts: str | list[str], is_error: bool = False) -> types.CallToolResult:
    texts = [texts] if isinstance(texts, str) else texts
    return types.CallToolResult(content=[types.TextContent(type="text", text=t) for t in texts], is_error=is_error)


def build_server(name: str, version: str, tools: list[ToolDef],
                 error_prefix: Callable[[str], str] = lambda tool: "") -> Server:
    by_name = {t.name: t for t in tools}

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name=t.name, description=t.description,
                                                       input_schema=t.input_schema) for t in tools])

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = by_name.get(params.name)
        if tool is None:
            return text_result(f"Unknown tool: {params.name}", is_error=True)
        args = dict(params.arguments or {})
        try:
            jsonschema.validate(args, tool.input_schema)
        except jsonschema.ValidationError as e:
            return text_result(f"Invalid arguments for tool {tool.name}: {e.message}", is_error=True)
        try:
            # Handlers block (files, subprocesses): keep the event loop free for the protocol.
            out = await anyio.to_thread.run_sync(tool.fn, args)
            return out if isinstance(out, types.CallToolResult) else text_result(out)
        except ToolFailure as e:
            return text_result(str(e), is_error=True)
        except Exception as e:  # noqa: BLE001 - every failure is a tool result, never a crashed server
            return text_result(error_prefix(tool.name) + (str(e) or type(e).__name__), is_error=True)

    return Server(name, version=version, on_list_tools=list_tools, on_call_tool=call_tool)


def serve_stdio(server: Server) -> None:
    from mcp.server.stdio import stdio_server

    async def main():
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


def dumps(value: Any) -> str:
    """JSON.stringify(value, null, 2), as the Node servers print results."""
    return json.dumps(value, indent=2, ensure_ascii=False)
