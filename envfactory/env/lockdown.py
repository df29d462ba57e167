"""Process confinement applied by a sandbox worker to itself before it runs untrusted code.

Layers, each independent (defence in depth); `apply()` reports which are active:

* rlimits      - address space, CPU seconds, file size, open files, no core dumps
* netns        - a private, empty network namespace (no interfaces but a down loopback)
* landlock     - kernel-enforced: writes only below the work dir (reads stay allowed)
* seccomp      - kernel-enforced syscall filter: no sockets, exec, fork, ptrace, mount,
                 or signals to other processes; threads stay allowed
* audit hook   - Python-level: clear `SandboxViolation` errors for sockets, subprocesses,
                 ctypes, and file writes outside the work dir, before the kernel says EPERM

The kernel layers need Linux (seccomp >= 3.5, landlock >= 5.13, netns as root or
with unprivileged user namespaces); where one is unavailable it is reported as
such, never silently assumed.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import struct
import sys

from .errors import SandboxViolation

# ---------------------------------------------------------------- rlimits


def set_rlimits(memory_mb: int, cpu_seconds: int, file_size_mb: int = 64, open_files: int = 64) -> None:
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_mb << 20, file_size_mb << 20))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


# ---------------------------------------------------------------- syscalls

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

# syscall numbers: (x86_64, aarch64)
_ARCH = platform.machine()
_IS_X86 = _ARCH in ("x86_64", "AMD64")
_AUDIT_ARCH = 0xC000003E if _IS_X86 else 0xC00000B7
_NR = {
    "socket": (41, 198), "socketpair": (53, 199), "connect": (42, 203), "bind": (49, 200),
    "listen": (50, 201), "accept": (43, 202), "accept4": (288, 242),
    "execve": (59, 221), "execveat": (322, 281), "fork": (57, None), "vfork": (58, None),
    "clone": (56, 220), "clone3": (435, 435), "ptrace": (101, 117), "mount": (165, 40),
    "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51), "unshare": (272, 97),
    "setns": (308, 268), "kill": (62, 129), "tkill": (200, 130), "tgkill": (234, 131),
    "process_vm_writev": (311, 271), "process_vm_readv": (310, 270), "bpf": (321, 280),
    "io_uring_setup": (425, 425), "keyctl": (250, 219), "reboot": (169, 142),
    "landlock_create_ruleset": (444, 444), "landlock_add_rule": (445, 445), "landlock_restrict_self": (446, 446),
}


def _nr(name: str) -> int | None:
    return _NR[name][0 if _IS_X86 else 1]


# ---------------------------------------------------------------- network namespace

CLONE_NEWNET = 0x40000000


def isolate_network() -> bool:
    return _libc.unshare(CLONE_NEWNET) == 0


# ---------------------------------------------------------------- landlock

_LL_WRITE_FILE, _LL_REMOVE_DIR, _LL_REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_LL_MAKE = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_LL_REFER, _LL_TRUNCATE = 1 << 13, 1 << 14


def restrict_writes(workdir: str) -> bool:
    """Landlock: writes, creations and removals allowed only below `workdir` (and /dev/null)."""
    nr_create, nr_add, nr_restrict = (_nr(n) for n in ("landlock_create_ruleset", "landlock_add_rule",
                                                         "landlock_restrict_self"))
    abi = _libc.syscall(nr_create, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        return False
    handled = _LL_WRITE_FILE | _LL_REMOVE_DIR | _LL_REMOVE_FILE | _LL_MAKE
    if abi >= 2:
        handled |= _LL_REFER
    if abi >= 3:
        handled |= _LL_TRUNCATE
    attr = ctypes.create_string_buffer(struct.pack("=Q", handled))
    ruleset = _libc.syscall(nr_create, attr, ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        for path, access in ((workdir, handled), ("/dev/null", _LL_WRITE_FILE | (_LL_TRUNCATE if abi >= 3 else 0))):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = ctypes.create_string_buffer(struct.pack("=Qi", access, fd))  # packed path_beneath_attr
                if _libc.syscall(nr_add, ctypes.c_int(ruleset), ctypes.c_int(1), rule, ctypes.c_uint32(0)) != 0:
                    return False
            finally:
                os.close(fd)
        if _libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            return False
        return _libc.syscall(nr_restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)) == 0
    finally:
        os.close(ruleset)


# ---------------------------------------------------------------- seccomp

_BPF_LD_W_ABS, _BPF_JEQ, _BPF_JSET, _BPF_RET = 0x20, 0x15, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO, _RET_KILL = 0x7FFF0000, 0x00050000, 0x80000000
_EPERM, _ENOSYS = 1, 38
_CLONE_THREAD = 0x00010000


def _stmt(code, k):
    return struct.pack("=HBBI", code, 0, 0, k & 0xFFFFFFFF)


def _jump(code, k, jt, jf):
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _seccomp_program(own_pid: int) -> bytes:
    deny = ["socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "execve", "execveat",
            "fork", "vfork", "ptrace", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
            "process_vm_writev", "process_vm_readv", "bpf", "io_uring_setup", "keyctl", "reboot"]
    deny_nrs = [n for n in (_nr(x) for x in deny) if n is not None]
    signal_nrs = [_nr("kill"), _nr("tkill"), _nr("tgkill")]
    prog = [_stmt(_BPF_LD_W_ABS, 4),                       # seccomp_data.arch
            _jump(_BPF_JEQ, _AUDIT_ARCH, 1, 0),
            _stmt(_BPF_RET, _RET_KILL),
            _stmt(_BPF_LD_W_ABS, 0)]                       # seccomp_data.nr
    # Threads (clone with CLONE_THREAD) are fine; new processes are not.
    # clone3 hides its flags in memory, so it answers ENOSYS and libc falls back to clone.
    prog += [_jump(_BPF_JEQ, _nr("clone3"), 0, 1), _stmt(_BPF_RET, _RET_ERRNO | _ENOSYS)]
    prog += [_jump(_BPF_JEQ, _nr("clone"), 0, 4),
             _stmt(_BPF_LD_W_ABS, 16),                     # args[0] low word: clone flags
             _jump(_BPF_JSET, _CLONE_THREAD, 0, 1),
             _stmt(_BPF_RET, _RET_ALLOW),
             _stmt(_BPF_RET, _RET_ERRNO | _EPERM)]
    # Signals only to ourselves (first argument is our pid / tgid).
    for nr in signal_nrs:
        prog += [_jump(_BPF_JEQ, nr, 0, 5),
                 _stmt(_BPF_LD_W_ABS, 16),
                 _jump(_BPF_JEQ, own_pid, 0, 1),
                 _stmt(_BPF_RET, _RET_ALLOW),
                 _stmt(_BPF_RET, _RET_ERRNO | _EPERM),
                 _stmt(_BPF_LD_W_ABS, 0)]                  # not taken: reload nr (never reached after ret)
    for nr in deny_nrs:
        prog += [_jump(_BPF_JEQ, nr, 0, 1), _stmt(_BPF_RET, _RET_ERRNO | _EPERM)]
    prog.append(_stmt(_BPF_RET, _RET_ALLOW))
    return b"".join(prog)


def install_seccomp() -> bool:
    if _AUDIT_ARCH is None or sys.platform != "linux":
        return False
    prog = _seccomp_program(os.getpid())
    n = len(prog) // 8
    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("=HxxxxxxQ", n, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog)
    if _libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    return _libc.prctl(22, 2, fbuf, 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


# ---------------------------------------------------------------- audit hook

_FORBIDDEN_EVENTS = {
    "socket.__new__": "network access", "socket.connect": "network access", "socket.bind": "network access",
    "socket.getaddrinfo": "network access", "socket.gethostbyname": "network access",
    "subprocess.Popen": "starting processes", "os.system": "starting processes", "os.exec": "starting processes",
    "os.spawn": "starting processes", "os.posix_spawn": "starting processes", "os.fork": "starting processes",
    "os.forkpty": "starting processes", "os.kill": "signalling processes", "os.killpg": "signalling processes",
    "ctypes.dlopen": "ctypes", "ctypes.dlsym": "ctypes", "ctypes.cdata": "ctypes", "ctypes.addressof": "ctypes",
    "ctypes.call_function": "ctypes", "ctypes.string_at": "ctypes", "ctypes.wstring_at": "ctypes",
    "ctypes.create_string_buffer": "ctypes", "ctypes.create_unicode_buffer": "ctypes",
    "sys.setrecursionlimit": None, "sys.addaudithook": "replacing the audit hook",
    "os.chdir": "changing directory", "os.chroot": "changing root", "shutil.rmtree": None,
    "os.remove": "removing files", "os.rmdir": "removing directories", "os.rename": "renaming files",
    "os.symlink": "creating links", "os.link": "creating links", "os.truncate": "truncating files",
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def install_audit_hook(workdir: str) -> None:
    root = os.path.realpath(workdir) + os.sep
    forbidden = {k: v for k, v in _FORBIDDEN_EVENTS.items() if v is not None}

    def inside(path) -> bool:
        try:
            p = os.path.realpath(os.fsdecode(path)) if not isinstance(path, int) else None
        except Exception:  # noqa: BLE001 - unresolvable path: treat as outside
            return False
        return p is None or p == "/dev/null" or (p + os.sep).startswith(root)

    def hook(event: str, args: tuple) -> None:
        reason = forbidden.get(event)
        if reason is not None:
            if event in ("os.remove", "os.rmdir", "os.rename", "os.truncate", "os.symlink", "os.link"):
                if all(inside(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))):
                    return
            raise SandboxViolation(f"sandbox: {reason} is not allowed ({event})")
        if event == "open":
            path, mode, flags = (args + (None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writing and path is not None and not inside(path):
                raise SandboxViolation(f"sandbox: writing outside the work dir is not allowed ({path})")

    sys.addaudithook(hook)


def apply(workdir: str, memory_mb: int, cpu_seconds: int) -> dict[str, bool]:
    """Confine the current process. Call once, after imports, before untrusted code."""
    os.chdir(workdir)
    sys.dont_write_bytecode = True
    layers = {"netns": isolate_network(), "landlock": restrict_writes(workdir)}
    set_rlimits(memory_mb, cpu_seconds)
    layers["rlimits"] = True
    layers["seccomp"] = install_seccomp()
    install_audit_hook(workdir)
    layers["audit_hook"] = True
    return layers
