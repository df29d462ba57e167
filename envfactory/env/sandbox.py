"""Driver side of the sandbox: one worker process per environment instance.

The driver (trainer, rollout loop, MCP server) never imports environment code.
It sends JSON frames over pipes and enforces the wall-clock limit; the worker
confines itself (`lockdown.py`). A worker that times out or dies is killed,
restarted and brought back to the last good state by replaying the successful
calls since the last reset (environments are deterministic), and the call
reports a structured error.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .errors import ErrorKind
from .limits import LAYERS, SandboxLimits  # noqa: F401 - LAYERS re-exported
from .package import EnvPackage
from .wire import MAX_FRAME, WireClosed, read_frame, write_frame

_PKG_ROOT = str(Path(__file__).resolve().parents[2])
_BOOT = f"import sys; sys.path.insert(0, {_PKG_ROOT!r}); from envfactory.env.worker import main; main()"


class SandboxError(RuntimeError):
    """The environment cannot be run at all (fails to load, or cannot be restored)."""


def _error(kind: ErrorKind, message: str) -> dict:
    return {"error": {"kind": kind.value, "message": message}}


class SandboxedEnv:
    """A sandboxed environment instance. Use as a context manager or call `close()`."""

    def __init__(self, package: str | Path | EnvPackage, limits: SandboxLimits | None = None,
                 workdir_parent: str | None = None):
        self.package = package if isinstance(package, EnvPackage) else EnvPackage(package)
        self.limits = limits or SandboxLimits()
        self._workdir_parent = workdir_parent
        self._proc: subprocess.Popen | None = None
        self._log: list[tuple] = []      # ops since the last reset, replayed after a restart
        self._pending: list[tuple] = []  # pipelined calls not yet collected
        self.layers: dict[str, bool] = {}
        self.restarts = 0
        self.recycles = 0  # workers replaced at a reset before reaching the lifetime CPU backstop
        self._exit_code: int | None = None
        self._failure = ""  # why the last _receive returned None: "hang" | "eof" | "garbage"
        self.workdir = tempfile.mkdtemp(prefix=f"envf-{self.package.name}-", dir=workdir_parent)
        self._start()

    # -- process management ---------------------------------------------------
    def _start(self) -> None:
        cfg = {"package": str(self.package.root), "workdir": self.workdir, "memory_mb": self.limits.memory_mb,
               "cpu_seconds": self.limits.cpu_seconds, "call_cpu_seconds": self.limits.call_cpu_seconds,
               "require_layers": self.limits.require_layers}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
               "HOME": self.workdir, "TMPDIR": self.workdir}  # no secrets reach untrusted code
        log = open(os.path.join(self.workdir, "worker.log"), "ab")
        try:
            # -s -P, not -I: -I implies -E, which would drop PYTHONHASHSEED=0 (salted str hash() differs per
            # worker, so environments hashing strings would not replay). The environment is scrubbed above.
            self._proc = subprocess.Popen([sys.executable, "-s", "-P", "-c", _BOOT, json.dumps(cfg)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                          cwd=self.workdir, env=env, close_fds=True, start_new_session=True)
        finally:
            log.close()
        self._wfd, self._rfd = self._proc.stdin.fileno(), self._proc.stdout.fileno()
        hello = self._receive(self.limits.start_timeout_s)
        if hello is None or "error" in hello:
            reason = "no answer" if hello is None else hello["error"]["message"]
            self._kill()
            raise SandboxError(f"{self.package.name}: worker failed to start: {reason}{self._log_tail()}")
        self.layers = hello["ok"]["layers"]

    def _log_tail(self) -> str:
        try:
            tail = Path(self.workdir, "worker.log").read_text(errors="replace")[-1500:]
        except OSError:
            return ""
        return f"\n--- worker log ---\n{tail}" if tail.strip() else ""

    def _kill(self) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._proc.wait()
        for f in (self._proc.stdin, self._proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self._proc = None

    def _restart(self) -> None:
        """Replace a dead or hung worker and replay the episode so far."""
        self._kill()
        self.restarts += 1
        self._start()
        for entry in self._log:
            reply = self._request(["reset", entry[1]] if entry[0] == "reset" else ["call", entry[1], entry[2]],
                                  self.limits.call_timeout_s)
            if reply is None or ("error" in reply and entry[0] == "reset"):
                self._kill()
                raise SandboxError(f"{self.package.name}: could not restore state after a worker restart")

    def _receive(self, timeout: float) -> dict | None:
        """Next frame from the worker, or None if it hung (killed) or died."""
        if self._proc is None:
            self._failure = "eof"
            return None
        ready, _, _ = select.select([self._rfd], [], [], timeout)
        if not ready:
            # A dead worker whose pipe is still open elsewhere is a crash, not a hang.
            self._failure = "hang" if self._proc.poll() is None else "eof"
            return None
        try:
            return json.loads(read_frame(self._rfd))
        except (WireClosed, OSError):
            self._failure = "eof"
        except ValueError:
            self._failure = "garbage"
        return None

    def _request(self, message: list, timeout: float) -> dict | None:
        try:
            write_frame(self._wfd, json.dumps(message, separators=(",", ":")).encode())
        except (BrokenPipeError, OSError):
            return None
        return self._receive(timeout)

    def _dead_reason(self) -> ErrorKind:
        self._exit_code = None
        if self._failure == "hang":
            return ErrorKind.timeout
        if self._failure == "garbage" or self._proc is None:
            return ErrorKind.worker_crashed
        try:  # the pipe closed: the process is exiting; get its status
            code = self._exit_code = self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return ErrorKind.worker_crashed
        if code in (-signal.SIGXCPU, -signal.SIGKILL, -signal.SIGXFSZ):
            return ErrorKind.resource_limit
        return ErrorKind.worker_crashed

    # -- public API -----------------------------------------------------------
    def call(self, tool: str, args: Any) -> dict:
        """Call a tool; returns {"ok": output} or {"error": {"kind", "message"}}. Never raises for bad calls."""
        self.submit(tool, args)
        return self.collect()[0]

    def submit(self, tool: str, args: Any) -> None:
        """Send a call without waiting (pipelining across several workers); `collect()` gets the answers."""
        if self._proc is None:
            self._restart()
        try:
            frame = json.dumps(["call", tool, args], separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            refused = _error(ErrorKind.invalid_arguments, f"{tool}: arguments are not JSON: {exc}")
            self._pending.append((tool, args, refused))
            return
        if len(frame) > MAX_FRAME:  # the worker would drop the connection: refuse here, the worker is untouched
            self._pending.append((tool, args, _error(ErrorKind.invalid_arguments,
                                                     f"{tool}: arguments of {len(frame)} bytes exceed the "
                                                     f"{MAX_FRAME}-byte limit of a call")))
            return
        try:
            write_frame(self._wfd, frame)
        except (BrokenPipeError, OSError):
            pass  # detected as a dead worker in collect()
        self._pending.append((tool, args, None))

    def collect(self) -> list[dict]:
        results = []
        pending, self._pending = self._pending, []
        for i, (tool, args, refused) in enumerate(pending):
            if refused is not None:
                results.append(refused)
                continue
            reply = self._receive(self.limits.call_timeout_s)
            if reply is None:
                kind = self._dead_reason()
                if kind is ErrorKind.timeout:
                    message = f"{tool}: exceeded the {self.limits.call_timeout_s:g}s time limit; call aborted"
                elif kind is ErrorKind.resource_limit and self._exit_code == -signal.SIGXCPU:
                    message = (f"{tool}: exceeded the CPU budget ({self.limits.call_cpu_seconds:g}s per call, "
                               f"{self.limits.cpu_seconds}s per worker); call aborted, the environment worker "
                               "was restarted")
                else:
                    message = f"{tool}: the environment worker died ({kind.value}); it was restarted"
                results.append(_error(kind, message))
                results.extend(r or _error(ErrorKind.worker_crashed, f"{t}: not run, an earlier call crashed")
                               for t, _, r in pending[i + 1:])
                self._restart()
                return results
            if "ok" in reply:
                self._log.append(("call", tool, args))
            results.append(reply)
        return results

    def reset(self, scenario: str | dict) -> None:
        """Reset to a named scenario of the package, or to an explicit state dict (restore)."""
        if self._proc is None:
            self._restart()
        reply = self._request(["reset", scenario], self.limits.call_timeout_s)
        if reply is None:
            self._log = []
            self._restart()
            reply = self._request(["reset", scenario], self.limits.call_timeout_s)
        if reply is None or "error" in reply:
            raise SandboxError(f"{self.package.name}: reset failed: {reply}")
        self._log = [("reset", scenario)]
        if reply.get("cpu", 0) >= self.limits.cpu_seconds / 2:
            # An episode boundary: replace a long-lived worker before the lifetime backstop could
            # abort an innocent call later (long RL runs); nothing to replay but this reset.
            self._kill()
            self.recycles += 1
            self._start()
            reply = self._request(["reset", scenario], self.limits.call_timeout_s)
            if reply is None or "error" in reply:
                raise SandboxError(f"{self.package.name}: reset failed after recycling the worker: {reply}")

    restore = reset

    def _query(self, op: str) -> Any:
        reply = self._request([op], self.limits.call_timeout_s)
        if reply is None:
            self._restart()
            reply = self._request([op], self.limits.call_timeout_s)
        if reply is None or "error" in reply:
            raise SandboxError(f"{self.package.name}: {op} failed: {reply}")
        return reply["ok"]

    def state(self) -> dict:
        """A snapshot of the current state (plain JSON; pass it to `restore` later)."""
        return self._query("state")

    snapshot = state

    def state_hash(self) -> str:
        return self._query("hash")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def close(self) -> None:
        self._kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "SandboxedEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
