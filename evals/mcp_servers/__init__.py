"""Project-owned MCP servers for MCP-Atlas tools that run offline, each a real stdio MCP server.

The published servers behind these tools are npm packages (filesystem, memory, code runners) or
PyPI packages written for the v1 `mcp` API (`mcp-server-calculator` 0.2.1 requires `mcp<2`;
`cli-mcp-server` 0.2.5 imports v1-only modules), which cannot run beside this project's `mcp==2.3.0`.
So each is re-implemented here after its upstream, keeping the tool names,
input schemas and output text formats that MCP-Atlas trajectories were recorded against. Tasks see
their files under the virtual root `/data` (as in the benchmark's container); a server maps it to a
per-run copy and never lets a path resolve outside it.

Run one with `python -m evals.mcp_servers.<module>`; configuration comes from environment variables
named like the upstream servers' (ALLOWED_DIR, MEMORY_FILE_PATH, CODE_STORAGE_DIR, ...).
"""

# MCP-Atlas server name (the tool-name prefix) -> module implementing it.
LOCAL_SERVERS: dict[str, str] = {
    "calculator": "evals.mcp_servers.calculator",
    "filesystem": "evals.mcp_servers.filesystem",
    "memory": "evals.mcp_servers.memory",
    "cli-mcp-server": "evals.mcp_servers.cli",
    "mcp-code-executor": "evals.mcp_servers.code_executor",
    "mcp-server-code-runner": "evals.mcp_servers.code_runner",
}

VIRTUAL_ROOT = "/data"
