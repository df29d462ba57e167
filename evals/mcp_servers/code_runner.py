"""`mcp-server-code-runner`: one tool, `run-code(code, languageId)`, after the npm package 0.1.8.

Same schema (the full languageId enum) and behaviour: the snippet is written to `tmp.<ext>` in a
temp directory and run with the language's interpreter; stdout is the result, and any stderr or
failure is an error. Interpreters not installed here fail as upstream does when one is missing.
Runs go through the sandbox (`_sandbox.py`) with `/data` mapped to the run's copy.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys

from ._base import ToolDef, ToolFailure, build_server, obj, serve_stdio
from ._paths import VirtualRoot
from ._sandbox import run_confined

EXECUTORS = {
    "javascript": "node", "php": "php", "python": "python -u", "perl": "perl", "perl6": "perl6", "ruby": "ruby",
    "go": "go run", "lua": "lua", "groovy": "groovy", "powershell": "powershell -ExecutionPolicy ByPass -File",
    "bat": "cmd /c", "shellscript": "bash", "fsharp": "fsi", "csharp": "scriptcs", "vbscript": "cscript //Nologo",
    "typescript": "ts-node", "coffeescript": "coffee", "scala": "scala", "swift": "swift", "julia": "julia",
    "crystal": "crystal", "ocaml": "ocaml", "r": "Rscript", "applescript": "osascript", "clojure": "lein exec",
    "racket": "racket", "scheme": "csi -script", "ahk": "autohotkey", "autoit": "autoit3", "dart": "dart",
    "haskell": "runhaskell", "nim": "nim compile --verbosity:0 --hints:off --run", "lisp": "sbcl --script",
    "kit": "kitc --run", "v": "v run", "sass": "sass --style expanded", "scss": "scss --style expanded",
}
EXTENSIONS = {"javascript": "js", "typescript": "ts", "powershell": "ps1"}


class CodeRunner:
    def __init__(self, root: VirtualRoot, write_root: str, timeout_s: float = 60):
        self.root, self.write_root, self.timeout_s = root, write_root, timeout_s
        self.tmp = os.path.join(write_root, ".code-runner")
        os.makedirs(self.tmp, exist_ok=True)

    def run_code(self, a: dict) -> str:
        code, lang = a["code"], a["languageId"]
        if not code:
            raise ToolFailure("Code is required.")
        argv = shlex.split(EXECUTORS[lang])
        if argv[0] == "python":
            argv[0] = sys.executable  # the interpreter this harness runs, with its libraries
        path = os.path.join(self.tmp, f"tmp.{EXTENSIONS.get(lang, lang)}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.root.expose(code))
        command = f'{EXECUTORS[lang]} "{path}"'
        if shutil.which(argv[0]) is None:
            raise ToolFailure(self._hide(f"Error: Command failed: {command}\n/bin/sh: 1: {argv[0]}: not found\n"))
        r = run_confined(argv + [path], cwd=self.root.real, write_root=self.write_root, timeout_s=self.timeout_s)
        if r.timed_out:
            raise ToolFailure(self._hide(f"Error: Command failed: {command} (timed out after {self.timeout_s} s)"))
        if r.returncode != 0:
            raise ToolFailure(self._hide(f"Error: Command failed: {command}\n{r.stderr}"))
        if r.stderr:
            raise ToolFailure(self._hide(f"Stderr: {r.stderr}"))
        return self._hide(r.stdout)

    def _hide(self, text: str) -> str:
        return self.root.hide(text.replace(self.tmp, "/tmp"))


def tools(r: CodeRunner) -> list[ToolDef]:
    return [ToolDef("run-code", "Run code snippet and return the result.",
                    obj({"code": {"type": "string", "description": "Code Snippet"},
                         "languageId": {"type": "string", "enum": list(EXECUTORS), "description": "Language ID"}},
                        ["code", "languageId"]), r.run_code)]


def main() -> None:
    root = VirtualRoot(os.environ["ALLOWED_DIR"], os.environ.get("MCP_VIRTUAL_ROOT", "/data"))
    runner = CodeRunner(root, os.environ.get("SANDBOX_WRITE_ROOT", root.real),
                        float(os.environ.get("CODE_TIMEOUT_S", "60")))
    serve_stdio(build_server("Code Runner", "0.1.0", tools(runner)))


if __name__ == "__main__":
    main()
