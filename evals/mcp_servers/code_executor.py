"""`mcp-code-executor`: Python code run from a code-storage directory, after bazinga012/mcp_code_executor (npm).

Tool names, arguments and the JSON result text (`status`, `output`, `file_path`, `generated_filename`)
follow the upstream server and MCP-Atlas recordings, where files land in
`/data/repos/mcp_code_executor_workspace`. Code runs through the sandbox (`_sandbox.py`); `/data` in
the code is mapped to the run's copy, and back in the output. File names are derived from the code
and a call counter, not random, so reruns see identical tool outputs (and hit the LLM cache).
`install_dependencies` and `configure_environment` need the network or a host change: refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import posixpath
import sys

from ._base import ToolDef, ToolFailure, build_server, obj, serve_stdio
from ._paths import VirtualRoot
from ._sandbox import run_confined

S = {"type": "string"}


class CodeExecutor:
    def __init__(self, root: VirtualRoot, storage_virtual: str, write_root: str, timeout_s: float = 60):
        self.root, self.write_root, self.timeout_s = root, write_root, timeout_s
        self.storage_virtual = storage_virtual
        self.storage = root.resolve(storage_virtual)
        os.makedirs(self.storage, exist_ok=True)
        self._n = 0

    def _name(self, stem: str, content: str) -> str:
        self._n += 1
        digest = hashlib.sha256(f"{self._n}\0{content}".encode()).hexdigest()[:8]
        return f"{os.path.basename(stem) or 'code'}_{digest}.py"

    def _storage_file(self, file_path: str) -> str:
        real = self.root.resolve(file_path, must_exist=True)
        if os.path.dirname(real) != os.path.realpath(self.storage):
            raise ToolFailure(json.dumps({"status": "error", "error": f"File not in code storage: {file_path}"}))
        return real

    def _run(self, real: str) -> str:
        virtual_path = self.root.to_virtual(real)
        r = run_confined([sys.executable, "-u", real], cwd=self.root.real, write_root=self.write_root,
                         timeout_s=self.timeout_s)
        if r.returncode == 0:
            result = {"status": "success", "output": self.root.hide(r.stdout)}
        else:
            error = f"Execution timed out after {self.timeout_s} seconds" if r.timed_out else self.root.hide(r.stderr)
            result = {"status": "error", "error": error, "output": self.root.hide(r.stdout)}
        result.update(file_path=virtual_path, generated_filename=os.path.basename(real))
        return json.dumps(result, ensure_ascii=False, separators=(",", ":"))

    def _write(self, name: str, content: str) -> str:
        real = os.path.join(self.storage, name)
        with open(real, "w", encoding="utf-8") as f:
            f.write(self.root.expose(content))
        return real

    def execute_code(self, a: dict) -> str:
        return self._run(self._write(self._name(a.get("filename") or "code", a["code"]), a["code"]))

    def initialize_code_file(self, a: dict) -> str:
        real = self._write(self._name(a.get("filename") or "code", a["content"]), a["content"])
        return json.dumps({"status": "success", "message": "File initialized successfully",
                           "file_path": self.root.to_virtual(real), "generated_filename": os.path.basename(real)})

    def append_to_code_file(self, a: dict) -> str:
        real = self._storage_file(a["file_path"])
        with open(real, "a", encoding="utf-8") as f:
            f.write(self.root.expose(a["content"]))
        return json.dumps({"status": "success", "message": "Content appended successfully",
                           "file_path": a["file_path"]})

    def execute_code_file(self, a: dict) -> str:
        return self._run(self._storage_file(a["file_path"]))

    def read_code_file(self, a: dict) -> str:
        real = self._storage_file(a["file_path"])
        with open(real, encoding="utf-8") as f:
            content = self.root.hide(f.read())
        return json.dumps({"status": "success", "content": content, "file_path": a["file_path"]})

    def check_installed_packages(self, a: dict) -> str:
        found = {p: importlib.util.find_spec(p.replace("-", "_")) is not None for p in a["packages"]}
        return json.dumps({"status": "success", "env_type": "venv",
                           "installed_packages": [p for p, ok in found.items() if ok],
                           "not_installed_packages": [p for p, ok in found.items() if not ok]})

    def get_environment_config(self, a: dict) -> str:
        return json.dumps({"type": "venv", "venv_path": posixpath.join(self.root.virtual, ".venv"),
                           "code_storage_dir": self.storage_virtual})

    def offline(self, a: dict) -> str:
        raise ToolFailure(json.dumps({"status": "error", "error": "Not available in this offline sandbox: "
                                      "no network, and the environment is fixed."}))


def tools(x: CodeExecutor) -> list[ToolDef]:
    pkgs = {"type": "array", "items": S}
    fp = {**S, "description": "Full path to the file"}
    return [
        ToolDef("execute_code", f"Execute Python code in the venv environment. Code is saved to "
                f"{x.storage_virtual} and run there; best for short code snippets.",
                obj({"code": {**S, "description": "Python code to execute"},
                     "filename": {**S, "description": "Optional: Name of the file to save the code (default: "
                                                      "generated UUID)"}}, ["code"]), x.execute_code),
        ToolDef("install_dependencies", "Install Python dependencies in the environment",
                obj({"packages": {**pkgs, "description": "List of packages to install"}}, ["packages"]), x.offline),
        ToolDef("check_installed_packages", "Check if packages are installed in the environment",
                obj({"packages": {**pkgs, "description": "List of packages to check"}}, ["packages"]),
                x.check_installed_packages),
        ToolDef("configure_environment", "Change the environment configuration settings",
                obj({"type": {**S, "enum": ["conda", "venv", "venv-uv"], "description": "Type of Python environment"},
                     "conda_name": S, "venv_path": S, "uv_venv_path": S}, ["type"]), x.offline),
        ToolDef("get_environment_config", "Get the current environment configuration", obj(),
                x.get_environment_config),
        ToolDef("initialize_code_file", "Create a new Python file with initial content. Use this as the first step "
                "for longer code that may exceed token limits. Follow with append_to_code_file for additional code.",
                obj({"content": {**S, "description": "Initial content to write to the file"},
                     "filename": {**S, "description": "Optional: Name of the file (default: generated UUID)"}},
                    ["content"]), x.initialize_code_file),
        ToolDef("append_to_code_file", "Append content to an existing Python code file. Use this to add more code "
                "to a file created with initialize_code_file.",
                obj({"file_path": {**S, "description": "Full path to the file"},
                     "content": {**S, "description": "Content to append to the file"}}, ["file_path", "content"]),
                x.append_to_code_file),
        ToolDef("execute_code_file", "Execute an existing Python file. Use this as the final step after building "
                "up code with initialize_code_file and append_to_code_file.",
                obj({"file_path": fp}, ["file_path"]), x.execute_code_file),
        ToolDef("read_code_file", "Read the content of an existing Python code file. Use this to verify the current "
                "state of a file before appending more content or executing it.",
                obj({"file_path": fp}, ["file_path"]), x.read_code_file),
    ]


def main() -> None:
    root = VirtualRoot(os.environ["ALLOWED_DIR"], os.environ.get("MCP_VIRTUAL_ROOT", "/data"))
    storage = os.environ.get("CODE_STORAGE_DIR", posixpath.join(root.virtual, "repos/mcp_code_executor_workspace"))
    x = CodeExecutor(root, storage, os.environ.get("SANDBOX_WRITE_ROOT", root.real),
                     float(os.environ.get("CODE_TIMEOUT_S", "60")))
    serve_stdio(build_server("mcp-code-executor", "0.3.0", tools(x)))


if __name__ == "__main__":
    main()
