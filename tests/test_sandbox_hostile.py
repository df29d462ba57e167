"""The hostile-code corpus: each attack is contained with a clear error and the driver is unaffected."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from envfactory.env.sandbox import SandboxedEnv, SandboxError, SandboxLimits
from tests.conftest import make_package

ESCAPE = Path("/tmp") / f"envf-escape-{uuid.uuid4().hex}"

CORPUS = {
    "socket": ("import socket\nsocket.create_connection(('127.0.0.1', 80), timeout=1)", "sandbox_violation"),
    "raw_socket_module": ("import _socket\n_socket.socket()", "sandbox_violation"),
    "write_outside_workdir": (f"open({str(ESCAPE)!r}, 'w').write('x')", "sandbox_violation"),
    "os_open_outside_workdir": (f"import os\nos.open({str(ESCAPE)!r}, os.O_CREAT | os.O_WRONLY)", "sandbox_violation"),
    "os_system": (f"import os\nos.system('touch {ESCAPE}')", "sandbox_violation"),
    "subprocess": (f"import subprocess\nsubprocess.run(['touch', {str(ESCAPE)!r}])", "sandbox_violation"),
    "fork_bomb": ("import os\nwhile True:\n    os.fork()", "sandbox_violation"),
    "kill_parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", "sandbox_violation"),
    "ctypes_poke": ("import ctypes\nctypes.string_at(0)", "sandbox_violation"),
    "allocate_10gib": ("x = bytearray(10 * 1024 ** 3)", "resource_limit"),
    "infinite_loop": ("while True:\n    pass", "timeout"),
    "hard_exit": ("import os\nos._exit(3)", "worker_crashed"),
    "sys_exit": ("import sys\nsys.exit(0)", "exception"),
    "mutate_then_raise": ("self.state['counter'] = 99\nraise ValueError('boom')", "exception"),
}


@pytest.mark.parametrize("attack", sorted(CORPUS))
def test_attack_is_contained(tmp_path, attack):
    body, kind = CORPUS[attack]
    pkg = make_package(tmp_path / attack, body)
    limits = SandboxLimits(call_timeout_s=2.0, memory_mb=768)
    with SandboxedEnv(pkg, limits) as env:
        env.reset("default")
        assert env.call("bump", {}) == {"ok": {"counter": 1}}
        before = env.state_hash()
        result = env.call("run", {})
        assert "error" in result, result
        assert result["error"]["kind"] == kind, result
        assert result["error"]["message"]
        # The state is what it was before the attack, the env keeps working.
        assert env.state_hash() == before
        assert env.call("bump", {}) == {"ok": {"counter": 2}}
    assert not ESCAPE.exists()


def test_kernel_layers_hold_without_the_audit_hook(tmp_path):
    """seccomp + landlock + netns contain code even if the Python-level hook were bypassed."""
    script = textwrap.dedent(f"""
        import os, sys, errno
        from envfactory.env import lockdown
        os.chdir({str(tmp_path)!r})
        layers = {{"netns": lockdown.isolate_network(), "landlock": lockdown.restrict_writes({str(tmp_path)!r}),
                  "seccomp": lockdown.install_seccomp()}}
        assert all(layers.values()), layers
        import _socket
        for name, attempt in [("socket", lambda: _socket.socket()),
                              ("fork", lambda: os.fork()),
                              ("exec", lambda: os.execv("/bin/true", ["true"])),
                              ("write", lambda: open({str(ESCAPE)!r}, "w")),
                              ("kill", lambda: os.kill(os.getppid(), 0))]:
            try:
                attempt()
            except OSError as exc:
                assert exc.errno in (errno.EPERM, errno.EACCES), (name, exc)
            else:
                print("ESCAPED", name); sys.exit(1)
        open("inside.txt", "w").write("ok")   # writing in the work dir still works
        import threading; t = threading.Thread(target=lambda: None); t.start(); t.join()  # threads too
        print("CONTAINED")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert "CONTAINED" in proc.stdout, proc.stdout + proc.stderr
    assert (tmp_path / "inside.txt").read_text() == "ok"
    assert not ESCAPE.exists()


def test_worker_reports_active_layers(hotel_dir):
    with SandboxedEnv(hotel_dir) as env:
        assert env.layers["rlimits"] and env.layers["audit_hook"]
        if sys.platform == "linux":
            assert env.layers["seccomp"]


def test_env_that_fails_to_import_is_reported(tmp_path):
    pkg = make_package(tmp_path / "broken", "pass", prelude="import this_module_does_not_exist")
    with pytest.raises(SandboxError, match="this_module_does_not_exist"):
        SandboxedEnv(pkg)


def test_hostile_import_time_code_is_contained(tmp_path):
    pkg = make_package(tmp_path / "evil_import", "pass", prelude=f"open({str(ESCAPE)!r}, 'w')")
    with pytest.raises(SandboxError, match="sandbox"):
        SandboxedEnv(pkg)
    assert not ESCAPE.exists()


def test_worker_gets_no_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    pkg = make_package(tmp_path / "env_probe", "import os\nif 'OPENAI_API_KEY' in os.environ:\n    raise RuntimeError('leak')")
    with SandboxedEnv(pkg) as env:
        env.reset("default")
        assert env.call("run", {}) == {"ok": {"done": True}}


def test_killed_worker_is_restarted_with_state_replayed(hotel_dir):
    with SandboxedEnv(hotel_dir) as env:
        env.reset("spring_iberia")
        booked = env.call("create_reservation", {"guest_id": "G-0001", "hotel_id": "HTL-002", "room_type": "suite",
                                                 "check_in": "2026-04-10", "nights": 2})
        assert booked["ok"]["reservation_id"] == "RSV-00013"
        before = env.state_hash()
        os.kill(env.pid, 9)
        env._proc.wait(timeout=10)  # os.kill is asynchronous: make sure it is dead before the next call
        crashed = env.call("get_reservation", {"reservation_id": "RSV-00013"})
        assert crashed["error"]["kind"] in ("worker_crashed", "resource_limit")
        assert env.restarts == 1
        assert env.state_hash() == before
        assert env.call("get_reservation", {"reservation_id": "RSV-00013"})["ok"]["status"] == "confirmed"
