"""Environment runtime: the contract (`Environment`), specs, sandboxed execution, MCP exposure."""

from .base import Environment
from .errors import ErrorKind, ToolError, ToolFailure

__all__ = ["Environment", "ErrorKind", "ToolError", "ToolFailure"]
