"""Atomic file output: write to a temp file in the same folder, fsync, rename; a failed write leaves nothing,
and the temp file of a writer killed before its rename is removed by the next write of the same output."""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import faults


def cache_root() -> Path:
    """Root of every content-addressed cache (verification reports, LLM responses, converted models)."""
    base = os.environ.get("ENVFACTORY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "envfactory")
    return Path(base)


_HOST = socket.gethostname()
STALE_TEMP_S = 86400.0  # a temp file this old is an orphan whoever wrote it


def _open_temp(path: Path, mode: int) -> tuple[int, Path]:
    """A new temp file beside `path`, named `.<name>.<random>.<pid>@<host>.tmp` so that a later write of the
    same output can tell one orphaned by a killed writer (`_sweep_temps`)."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.{os.getpid()}@{_HOST}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), tmp
        except FileExistsError:
            continue


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _sweep_temps(path: Path) -> None:
    """Remove the temp files of earlier writes of `path` whose writer died before its rename (SIGKILL, OOM, a
    lost node): this host's whose process is gone, anyone's older than STALE_TEMP_S. Live writers keep theirs."""
    prefix = f".{path.name}."
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid, _, host = name[len(prefix):-len(".tmp")].rpartition(".")[2].partition("@")
        try:
            orphan = host == _HOST and pid.isdigit() and not _pid_alive(int(pid))
            if orphan or now - entry.stat().st_mtime > STALE_TEMP_S:
                os.unlink(entry.path)
        except OSError:
            continue


@contextmanager
def atomic_path(path: str | Path, mode: int = 0o666) -> Iterator[Path]:
    """A temp path beside `path` for a writer that wants a file name (Parquet); on a clean exit it is fsynced
    and renamed onto `path`, on any error (a full disk included) removed, so `path` is old or new, never partial."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_temp(path, mode)  # 0o666: the umask's mode, as a plain open would give
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        faults.before_rename(path)
        os.replace(tmp, path)
        _sweep_temps(path)
    except OSError as exc:  # a full disk, a quota: no partial file, and an error that names the output
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """`exc` with the output's path (a failed write(2) names no file: `[Errno 28] No space left on device`)."""
    if exc.filename is not None:
        return exc
    return type(exc)(exc.errno, f"{exc.strerror or exc}; output not written (an earlier one is unchanged)", str(path))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path, mode=0o600) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
