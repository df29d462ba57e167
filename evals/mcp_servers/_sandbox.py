"""Run untrusted code or commands for the code-runner and cli servers: confined, time-limited, offline.

Each run is a fresh process started through `_confine.py` (no network namespace, writes only below
the run's directory, memory/CPU/file-size rlimits), in its own session so that a timeout kills the
whole process group. The environment is minimal: no secrets of the harness reach the code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

_CONFINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_confine.py")


@dataclass
class RunResult:
    stdout: str
    stderr: str
    returncode: int
    timed_out: bool = False


def run_confined(argv: list[str], *, cwd: str, write_root: str, timeout_s: float, memory_mb: int = 2048,
                 stdin: str | None = None) -> RunResult:
    tmp = os.path.join(write_root, ".tmp")
    os.makedirs(tmp, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": tmp, "TMPDIR": tmp,
           "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if os.environ.get("MCP_SANDBOX_REQUIRE_NETNS"):
        env["MCP_SANDBOX_REQUIRE_NETNS"] = os.environ["MCP_SANDBOX_REQUIRE_NETNS"]
    cmd = [sys.executable, "-I", _CONFINE, write_root, str(memory_mb), str(int(timeout_s) + 1), "--", *argv]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True, close_fds=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout_s)
        return RunResult(out, err, proc.returncode)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return RunResult(out, err, -signal.SIGKILL, timed_out=True)
