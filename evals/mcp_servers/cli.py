"""`cli-mcp-server`: allow-listed shell commands in the data directory, after PyPI `cli-mcp-server` 0.2.5.

Same tools (`run_command`, `show_security_rules`), validation rules and output. The configuration
defaults to what MCP-Atlas recordings show (`cat, find, ls`; no flags; no shell operators). Commands
run without a shell through the sandbox (`_sandbox.py`: no network, writes only in the run directory,
rlimits, timeout); path arguments are mapped from `/data` and must stay inside it.
"""

from __future__ import annotations

import os
import shlex

from ._base import ToolDef, ToolFailure, build_server, obj, serve_stdio
from ._paths import AccessDenied, VirtualRoot
from ._sandbox import run_confined

_OPERATORS = ["&&", "||", "|", ">", ">>", "<", "<<", ";"]


class CommandRunner:
    def __init__(self, root: VirtualRoot, write_root: str, commands: set[str], flags: set[str],
                 max_length: int = 1024, timeout_s: int = 30):
        self.root, self.write_root = root, write_root
        self.commands, self.flags = commands, flags
        self.max_length, self.timeout_s = max_length, timeout_s

    def validate(self, command: str) -> list[str]:
        for op in _OPERATORS:
            if op in command:
                raise ToolFailure(f"Security violation: Shell operator '{op}' is not supported. "
                                  "Set ALLOW_SHELL_OPERATORS=true to enable.")
        try:
            parts = shlex.split(command)
        except ValueError as e:
            raise ToolFailure(f"Security violation: Invalid command format: {e}") from None
        if not parts:
            raise ToolFailure("Security violation: Empty command")
        cmd, args = parts[0], parts[1:]
        if cmd not in self.commands:
            raise ToolFailure(f"Security violation: Command '{cmd}' is not allowed")
        argv = [cmd]
        for arg in args:
            if arg.startswith("-"):
                if arg not in self.flags:
                    raise ToolFailure(f"Security violation: Flag '{arg}' is not allowed")
                argv.append(arg)
                continue
            explicit = (arg.startswith(("./", "../", "/")) and not arg.startswith("//")) or arg == "."
            if explicit or ("/" in arg and os.path.exists(os.path.join(self.root.real, arg))):
                try:
                    argv.append(self.root.resolve(arg))
                except AccessDenied:
                    raise ToolFailure(f"Security violation: Path '{arg}' is outside of allowed directory: "
                                      f"{self.root.virtual}") from None
            else:
                argv.append(arg)
        return argv

    def run_command(self, a: dict) -> list[str]:
        command = a.get("command")
        if not command:
            raise ToolFailure("No command provided")
        if len(command) > self.max_length:
            raise ToolFailure(f"Security violation: Command exceeds maximum length of {self.max_length}")
        argv = self.validate(command)
        r = run_confined(argv, cwd=self.root.real, write_root=self.write_root, timeout_s=self.timeout_s)
        if r.timed_out:
            raise ToolFailure(f"Command timed out after {self.timeout_s} seconds")
        out = [self.root.hide(t) for t in (r.stdout, r.stderr) if t]
        return out + [f"\nCommand completed with return code: {r.returncode}"]

    def show_security_rules(self, a: dict) -> str:
        return ("Security Configuration:\n==================\n"
                f"Working Directory: {self.root.virtual}\n"
                f"\nAllowed Commands:\n----------------\n{', '.join(sorted(self.commands))}\n"
                f"\nAllowed Flags:\n-------------\n{', '.join(sorted(f for f in self.flags if f))}\n"
                f"\nSecurity Limits:\n---------------\nMax Command Length: {self.max_length} characters\n"
                f"Command Timeout: {self.timeout_s} seconds\n")


def tools(r: CommandRunner) -> list[ToolDef]:
    return [
        ToolDef("run_command",
                f"Allows command (CLI) execution in the directory: {r.root.virtual}\n\n"
                f"Available commands: {', '.join(sorted(r.commands))}\n"
                f"Available flags: {', '.join(sorted(f for f in r.flags if f))}\n\n"
                "Shell operators (&&, ||, |, >, >>, <, <<, ;) are not supported. Set ALLOW_SHELL_OPERATORS=true to "
                "enable.",
                obj({"command": {"type": "string",
                                 "description": "Single command to execute (example: 'ls -l' or 'cat file.txt')"}},
                    ["command"]), r.run_command),
        ToolDef("show_security_rules", "Show what commands and operations are allowed in this environment.\n",
                obj(), r.show_security_rules),
    ]


def main() -> None:
    root = VirtualRoot(os.environ["ALLOWED_DIR"], os.environ.get("MCP_VIRTUAL_ROOT", "/data"))
    runner = CommandRunner(root, os.environ.get("SANDBOX_WRITE_ROOT", root.real),
                           set(os.environ.get("ALLOWED_COMMANDS", "cat,find,ls").split(",")),
                           set(os.environ.get("ALLOWED_FLAGS", "").split(",")),
                           int(os.environ.get("MAX_COMMAND_LENGTH", "1024")),
                           int(os.environ.get("COMMAND_TIMEOUT", "30")))
    serve_stdio(build_server("cli-mcp-server", "0.2.1", tools(runner), error_prefix=lambda t: "Error: "))


if __name__ == "__main__":
    main()
