"""Length-prefixed JSON frames between the driver and a sandbox worker.

JSON in both directions: the worker is untrusted, so the driver never unpickles
or unmarshals what it sends.
"""

from __future__ import annotations

import os
import struct

HEADER = struct.Struct(">I")
MAX_FRAME = 64 << 20


class WireClosed(EOFError):
    pass


def write_frame(fd: int, payload: bytes) -> None:
    data = HEADER.pack(len(payload)) + payload
    while data:
        n = os.write(fd, data)
        data = data[n:]


def read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            raise WireClosed("peer closed the pipe")
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_frame(fd: int, max_size: int = MAX_FRAME) -> bytes:
    (size,) = HEADER.unpack(read_exact(fd, HEADER.size))
    if size > max_size:
        raise WireClosed(f"frame of {size} bytes exceeds the {max_size}-byte limit")
    return read_exact(fd, size)
