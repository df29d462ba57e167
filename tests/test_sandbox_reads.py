"""Read confinement of the MCP-Atlas code and command runners (`evals/mcp_servers/_confine.py`).

The runners exec the command, so only kernel layers survive (no seccomp, no audit hook): Landlock
must deny reads outside the run's data, its write root, the Python installation and system
binaries/libraries. Tool outputs go back into prompts sent to hosted APIs: a credential read here
would leave the machine.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from envfactory.env import lockdown
from envfactory.io import cache_root
from evals.mcp_servers._paths import VirtualRoot
from evals.mcp_servers._sandbox import run_confined
from evals.mcp_servers.cli import CommandRunner
from evals.mcp_servers.code_executor import CodeExecutor

pytestmark = pytest.mark.skipif(lockdown.landlock_abi() < 1, reason="needs Landlock (Linux >= 5.13)")

ROOT = Path(__file__).resolve().parents[1]
SECRET, PROBE = f"envf-secret-{uuid.uuid4().hex}", f"envf-probe-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory laid out as the MCP-Atlas harness does (data/ is `/data`, the run dir is the write
    root), another run's directory beside it, and secrets where a real machine keeps them."""
    base = tmp_path_factory.mktemp("atlas")
    run_dir, other = base / "run", base / "other-run"
    (run_dir / "data" / "sub").mkdir(parents=True)
    (run_dir / "data" / "notes.txt").write_text("inside\n")
    (run_dir / "data" / "sub" / "table.csv").write_text("a,b\n1,2\n3,4\n")
    other.mkdir()
    planted = {"home_file": Path.home() / f".{PROBE}", "cache_file": cache_root() / f"{PROBE}.json",
               "results_file": ROOT / "results" / f".{PROBE}", "other_file": other / "answer.txt"}
    for path in planted.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SECRET)
    yield run_dir, {k: str(v) for k, v in planted.items()}
    for path in planted.values():
        path.unlink(missing_ok=True)


TARGETS = ["/etc/shadow", "home_file", "cache_file", "results_file", "other_file", "/proc/{ppid}/environ"]


def _target(name: str, secrets: dict) -> str:
    return secrets.get(name, name).format(ppid=os.getpid())  # the runner's parent is this process


@pytest.mark.parametrize("target", TARGETS)
def test_command_runner_kernel_denies_reads(run, target):
    """What `run_command` execs after validation: even a command naming the path directly is denied."""
    run_dir, secrets = run
    r = run_confined(["cat", _target(target, secrets)], cwd=str(run_dir / "data"), write_root=str(run_dir),
                     timeout_s=30)
    assert r.returncode != 0 and "Permission denied" in r.stderr, (r.returncode, r.stdout, r.stderr)
    assert SECRET not in r.stdout and "layers unavailable" not in r.stderr


def test_command_runner_cannot_list_home(run):
    run_dir, _ = run
    r = run_confined(["ls", "-a", str(Path.home())], cwd=str(run_dir / "data"), write_root=str(run_dir), timeout_s=30)
    assert r.returncode != 0 and "Permission denied" in r.stderr and PROBE not in r.stdout, r


def test_command_runner_still_works_inside_the_data(run):
    run_dir, _ = run
    runner = CommandRunner(VirtualRoot(str(run_dir / "data")), str(run_dir), {"cat", "ls", "find"}, {"-l", ""})
    assert runner.run_command({"command": "cat notes.txt"})[0] == "inside\n"
    assert "table.csv" in runner.run_command({"command": "find ."})[0]
    listing = runner.run_command({"command": "ls -l sub"})[0]
    assert "table.csv" in listing and "root" in listing  # user names still resolve (/etc/passwd)


def test_code_executor_denies_reads_and_keeps_working(run):
    run_dir, secrets = run
    x = CodeExecutor(VirtualRoot(str(run_dir / "data")), "/data/repos/ws", str(run_dir), timeout_s=60)
    paths = [_target(t, secrets) for t in TARGETS]
    code = ("import os, numpy, pandas\n"
            f"for p in {paths!r}:\n"
            "    try:\n        open(p, 'rb').read(); print('READ', p)\n"
            "    except PermissionError:\n        print('denied')\n"
            f"for d in [{str(Path.home())!r}, {str(cache_root())!r}, {str(ROOT)!r}, '/proc/1']:\n"
            "    try:\n        os.listdir(d); print('LISTED', d)\n"
            "    except PermissionError:\n        print('denied')\n"
            "df = pandas.read_csv('/data/sub/table.csv')\n"
            "print(int(numpy.asarray(df['b']).sum()), open('/data/notes.txt').read().strip())\n")
    out = json.loads(x.execute_code({"code": code}))
    assert out["status"] == "success", out
    assert out["output"].split() == ["denied"] * (len(TARGETS) + 4) + ["6", "inside"], out["output"]
    assert SECRET not in json.dumps(out)


def test_python_under_home_is_readable_but_not_home(run):
    """Python lives under $HOME here (pyenv): exactly its folders are readable, not $HOME."""
    run_dir, _ = run
    code = f"import os, json\nprint(json.__file__)\nos.listdir({str(Path.home())!r})\n"
    r = run_confined([sys.executable, "-c", code], cwd=str(run_dir / "data"), write_root=str(run_dir), timeout_s=30)
    assert r.stdout.strip().endswith("json/__init__.py") and "PermissionError" in r.stderr, r
