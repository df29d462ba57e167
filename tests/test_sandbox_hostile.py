"""The hostile-code corpus: each attack is contained with a clear error and the driver is unaffected."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from envfactory.env import lockdown
from envfactory.env.sandbox import SandboxedEnv, SandboxError, SandboxLimits
from envfactory.io import cache_root
from tests.conftest import make_package

ROOT = Path(__file__).resolve().parents[1]
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


# Reads of what a generated environment could ship out through its tool outputs (they go back into
# prompts sent to hosted APIs). `{name}` fields are files the `secrets` fixture plants, holding SECRET.
SECRET, PROBE = f"envf-secret-{uuid.uuid4().hex}", f"envf-probe-{uuid.uuid4().hex}"
READ_CORPUS = {
    "read_etc_shadow": "open('/etc/shadow').read()",
    "os_open_etc_shadow": "import os\nos.read(os.open('/etc/shadow', os.O_RDONLY), 100)",
    "read_home_file": "open({home_file!r}).read()",
    "read_home_file_pathlib": "import pathlib\npathlib.Path({home_file!r}).read_bytes()",
    "list_home": "import os\nos.listdir({home!r})",
    "read_llm_cache": "open({cache_file!r}).read()",
    "list_llm_cache": "import os\nos.listdir({cache!r})",
    "read_results": "open({results_file!r}).read()",
    "list_results": "import os\nlist(os.scandir({results!r}))",
    "read_project_config": "open({config!r}).read()",
    "read_other_worker_workdir": "open({other_file!r}).read()",
    "list_other_worker_workdir": "import os\nos.listdir({other!r})",
    "read_parent_environ": "import os\nopen('/proc/%d/environ' % os.getppid(), 'rb').read()",
    "read_parent_cmdline": "import os\nopen('/proc/%d/cmdline' % os.getppid(), 'rb').read()",
}


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    """Secret files where a real machine has them: $HOME, the LLM cache, results/, another worker's work dir."""
    home = Path.home()
    planted = {"home_file": home / f".{PROBE}", "cache_file": cache_root() / f"{PROBE}.json",
               "results_file": ROOT / "results" / f".{PROBE}"}
    other = SandboxedEnv(make_package(tmp_path_factory.mktemp("other") / "pkg", "pass"))
    planted["other_file"] = Path(other.workdir) / "notes.txt"
    for path in planted.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SECRET)
    yield {**{k: str(v) for k, v in planted.items()}, "home": str(home), "cache": str(cache_root()),
           "results": str(ROOT / "results"), "config": str(ROOT / "config" / "config.yaml"),
           "other": other.workdir}
    other.close()
    for path in planted.values():
        path.unlink(missing_ok=True)


def _contained(pkg: Path, kind: str) -> dict:
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
    return result


@pytest.mark.parametrize("attack", sorted(CORPUS))
def test_attack_is_contained(tmp_path, attack):
    body, kind = CORPUS[attack]
    _contained(make_package(tmp_path / attack, body), kind)
    assert not ESCAPE.exists()


@pytest.mark.parametrize("attack", sorted(READ_CORPUS))
def test_read_outside_the_sandbox_is_contained(tmp_path, secrets, attack):
    body = READ_CORPUS[attack].format(**secrets) + "\nraise ValueError('read: ' + repr(locals())[:3000])"
    result = _contained(make_package(tmp_path / attack, body), "sandbox_violation")
    message = result["error"]["message"]
    assert SECRET not in message and ("reading outside" in message or "listing a folder" in message), message


def test_worker_reads_what_it_needs(tmp_path):
    """Confinement leaves what environments use: stdlib and site-packages imports after lockdown (also after the
    import caches are invalidated), time zones, random, the package's own files, the work dir, its own /proc."""
    body = """
        import importlib
        importlib.invalidate_caches()  # imports rescan every sys.path folder, the unreadable project root too
        import datetime, decimal, os, pathlib, random, zoneinfo, xml.dom.minidom
        import yaml  # site-packages, imported only now
        here = pathlib.Path(__file__).parent
        assert (here / "spec.json").read_text() and os.listdir(here)
        pathlib.Path("scratch.txt").write_text("x")
        assert open("scratch.txt").read() == "x" and "scratch.txt" in os.listdir(".")
        assert datetime.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")).utcoffset()
        assert open("/proc/self/status").read() and os.urandom(4) and random.random() < 1
        assert os.cpu_count() >= 1 and open(os.devnull).read() == ""
    """
    pkg = make_package(tmp_path / "needs", body)
    with SandboxedEnv(pkg) as env:
        assert env.layers.get("landlock_read") or lockdown.landlock_abi() < 1, env.layers
        env.reset("default")
        assert env.call("run", {}) == {"ok": {"done": True}}


def test_kernel_layers_hold_without_the_audit_hook(tmp_path, secrets):
    """seccomp + landlock (writes and reads) + netns contain code even if the Python-level hook were bypassed."""
    script = textwrap.dedent(f"""
        import os, sys, errno
        from envfactory.env import lockdown
        os.chdir({str(tmp_path)!r})
        readable = lockdown.read_allowlist({str(tmp_path)!r})
        layers = {{"netns": lockdown.isolate_network(), "landlock": lockdown.restrict_writes({str(tmp_path)!r}),
                  "landlock_read": lockdown.restrict_reads(readable), "seccomp": lockdown.install_seccomp()}}
        assert all(layers.values()), layers
        import _socket
        s = {secrets!r}
        for name, attempt in [("socket", lambda: _socket.socket()),
                              ("fork", lambda: os.fork()),
                              ("exec", lambda: os.execv("/bin/true", ["true"])),
                              ("write", lambda: open({str(ESCAPE)!r}, "w")),
                              ("kill", lambda: os.kill(os.getppid(), 0)),
                              ("read /etc/shadow", lambda: open("/etc/shadow").read()),
                              ("read home file", lambda: open(s["home_file"]).read()),
                              ("list home", lambda: os.listdir(s["home"])),
                              ("read llm cache", lambda: open(s["cache_file"]).read()),
                              ("read results", lambda: open(s["results_file"]).read()),
                              ("read project config", lambda: open(s["config"]).read()),
                              ("read other worker", lambda: open(s["other_file"]).read()),
                              ("list other worker", lambda: os.listdir(s["other"])),
                              ("read parent environ", lambda: open("/proc/%d/environ" % os.getppid(), "rb").read()),
                              ("read parent cmdline", lambda: open("/proc/%d/cmdline" % os.getppid(), "rb").read())]:
            try:
                attempt()
            except OSError as exc:
                assert exc.errno in (errno.EPERM, errno.EACCES), (name, exc)
            else:
                print("ESCAPED", name); sys.exit(1)
        open("inside.txt", "w").write("ok")   # writing in the work dir still works
        assert open("inside.txt").read() == "ok" and os.listdir(".")  # reading it too
        import threading; t = threading.Thread(target=lambda: None); t.start(); t.join()  # threads too
        import yaml, zoneinfo, decimal  # imports after lockdown: site-packages, stdlib, C extensions
        zoneinfo.ZoneInfo("Europe/Paris")
        print("CONTAINED")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "CONTAINED" in proc.stdout, proc.stdout + proc.stderr
    assert (tmp_path / "inside.txt").read_text() == "ok"
    assert not ESCAPE.exists()


def test_worker_reports_active_layers(hotel_dir):
    with SandboxedEnv(hotel_dir) as env:
        assert env.layers["rlimits"] and env.layers["audit_hook"]
        if sys.platform == "linux":
            assert env.layers["seccomp"]


def test_read_confinement_can_be_required(hotel_dir):
    """`envs.sandbox.require_layers: [landlock_read]` runs only where reads are kernel-confined."""
    if lockdown.landlock_abi() < 1:
        pytest.skip("needs Landlock (Linux >= 5.13)")
    with SandboxedEnv(hotel_dir, SandboxLimits(require_layers=["landlock", "landlock_read", "seccomp"])) as env:
        assert env.layers["landlock_read"] and env.layers["landlock"]
    with pytest.raises(ValueError, match="unknown sandbox layers"):
        SandboxLimits(require_layers=["landlock-read"])


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
    pkg = make_package(tmp_path / "env_probe",
                       "import os\nif 'OPENAI_API_KEY' in os.environ:\n    raise RuntimeError('leak')")
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
