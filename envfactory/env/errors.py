"""Structured tool errors: what the agent sees instead of an exception."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel


class ErrorKind(str, Enum):
    unknown_tool = "unknown_tool"            # no tool of that name
    invalid_arguments = "invalid_arguments"  # arguments fail the tool's input_schema
    domain_error = "domain_error"            # the tool refused (ToolFailure): e.g. "order not found"
    exception = "exception"                  # an unexpected exception inside the tool
    invalid_output = "invalid_output"        # the tool returned something that is not JSON
    timeout = "timeout"                      # wall-clock limit exceeded; worker killed and restarted
    resource_limit = "resource_limit"        # memory / CPU limit hit
    sandbox_violation = "sandbox_violation"  # network, subprocess, fs escape, ctypes ...
    worker_crashed = "worker_crashed"        # the worker process died; it was restarted


class ToolError(BaseModel):
    kind: ErrorKind
    message: str

    def to_json(self) -> dict:
        return {"error": {"kind": self.kind.value, "message": self.message}}


class ToolFailure(Exception):
    """Raised by a tool to refuse a request with a message for the agent."""


class SandboxViolation(RuntimeError):
    """Raised inside a sandbox worker when code attempts a forbidden operation."""
