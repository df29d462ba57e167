"""Fault injection for the crash tests (tests/test_faults.py): SIGKILL this process at a named point.

`ENVFACTORY_FAULT` holds comma-separated point names. Two kinds of points exist:

- `<rule>:<point>`, placed in a stage where a real crash would leave damage: after a checkpoint or a partial
  output is written, before the final atomic write (e.g. `sft:checkpointed`, `datasets:sft_written`);
- `write:<path suffix>`, inside `envfactory.io`'s atomic writes and the Parquet writer: the temp file is
  complete and fsynced, the rename has not happened (e.g. `write:data/chains.parquet`). This also reaches
  the `run:` rules (`resolved_config`, `headline`), which Snakemake 9 runs in a job process of their own.

A point name ending in `!group` SIGKILLs the whole process group instead: the job and the Snakemake process
that started it (a lost node, the OOM killer taking the lot), so that no `onerror` runs and the directory lock
stays behind. Run Snakemake in a session of its own for that (`start_new_session=True`).

Unset (always, outside the tests) a point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "ENVFACTORY_FAULT"


def _armed() -> dict[str, bool]:
    """Armed point name -> whether it kills the process group."""
    spec = os.environ.get(ENV)
    names = [s.strip() for s in spec.split(",") if s.strip()] if spec else []
    return {n.removesuffix("!group"): n.endswith("!group") for n in names}


def _die(name: str, group: bool) -> None:
    os.write(2, f"[faults] SIGKILL at {name}{' (process group)' if group else ''}\n".encode())
    if group:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def point(name: str) -> None:
    """Die here when `ENVFACTORY_FAULT` names this point."""
    armed = _armed()
    if name in armed:
        _die(name, armed[name])


def before_rename(path: str | Path) -> None:
    """Die between a complete temp file and its rename when a `write:<suffix>` point matches `path`."""
    for spec, group in _armed().items():
        if spec.startswith("write:") and Path(path).as_posix().endswith(spec.removeprefix("write:")):
            _die(spec, group)
