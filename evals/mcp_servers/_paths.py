"""The virtual `/data` root: tasks name files as the benchmark's container did; we map to a real copy.

Every path a tool receives goes through `resolve` (containment checked lexically, then again after
symlinks are resolved), and every text a tool returns goes through `hide` so the real location
never reaches the agent.
"""

from __future__ import annotations

import os
import posixpath
import re

from . import VIRTUAL_ROOT


class AccessDenied(ValueError):
    pass


class VirtualRoot:
    def __init__(self, real_root: str, virtual: str = VIRTUAL_ROOT):
        self.real = os.path.realpath(real_root)
        self.virtual = virtual.rstrip("/") or "/"
        # `/data` as a path token in code or command text: not part of a longer name (`/database`, `x/data`).
        self._token = re.compile(r"(?<![\w./-])" + re.escape(self.virtual) + r"(?=/|\b|$)")

    def _inside_real(self, real: str) -> bool:
        return real == self.real or real.startswith(self.real + os.sep)

    def lexical(self, path: str) -> tuple[str, str]:
        """(normalized virtual path, real path) after the lexical containment check; symlinks not followed."""
        if not isinstance(path, str) or not path or "\x00" in path:
            raise AccessDenied(f"Access denied - invalid path: {path!r}")
        virtual = posixpath.normpath(path if path.startswith("/") else posixpath.join(self.virtual, path))
        if virtual != self.virtual and not virtual.startswith(self.virtual + "/"):
            raise AccessDenied(f"Access denied - path outside allowed directories: {virtual} not in {self.virtual}")
        return virtual, os.path.normpath(os.path.join(self.real, posixpath.relpath(virtual, self.virtual)))

    def resolve(self, path: str, must_exist: bool = False) -> str:
        """Virtual (or root-relative) path -> real path inside the root; AccessDenied otherwise."""
        virtual, real = self.lexical(path)
        # Symlinks: the deepest existing ancestor (the path itself when it exists) must resolve inside.
        probe = real
        while not os.path.lexists(probe):
            probe = os.path.dirname(probe)
        resolved = os.path.realpath(probe)
        if not self._inside_real(resolved):
            raise AccessDenied(f"Access denied - symlink target outside allowed directories: "
                               f"{self.to_virtual(resolved)} not in {self.virtual}")
        if must_exist and not os.path.exists(real):
            raise FileNotFoundError(f"ENOENT: no such file or directory, '{virtual}'")
        return os.path.realpath(real) if os.path.lexists(real) else real

    def to_virtual(self, real: str) -> str:
        real = os.path.normpath(real)
        if real == self.real:
            return self.virtual
        if real.startswith(self.real + os.sep):
            return posixpath.join(self.virtual, os.path.relpath(real, self.real).replace(os.sep, "/"))
        return real

    def hide(self, text: str) -> str:
        """Replace the real root in tool output with the virtual one."""
        return text.replace(self.real, self.virtual) if text else text

    def expose(self, text: str) -> str:
        """Rewrite `/data/...` tokens in code or a command line to the real root (the inverse of `hide`)."""
        return self._token.sub(lambda m: self.real, text)
