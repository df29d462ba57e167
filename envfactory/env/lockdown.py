"""Process confinement applied by a sandbox worker to itself before it runs untrusted code.

Layers, each independent (defence in depth); `apply()` reports which are active:

* rlimits       - address space, CPU seconds (a lifetime backstop; each call gets its own budget,
                  see `call_cpu_budget`), file size, open files, no core dumps
* netns         - a private, empty network namespace (no interfaces but a down loopback)
* landlock      - kernel-enforced: writes only below the work dir
* landlock_read - kernel-enforced: reads (and directory listings, exec) only of what the worker
                  needs: the Python installation it imports from, the environment package, the
                  work dir, shared libraries and a few system files (`read_allowlist`); the rest
                  of the machine - $HOME, /etc/shadow, caches, results, other workers, other
                  processes' /proc - answers EACCES
* seccomp       - kernel-enforced syscall filter: no sockets, exec, fork, ptrace, mount,
                  or signals to other processes; threads stay allowed
* audit hook    - Python-level: clear `SandboxViolation` errors for sockets, subprocesses,
                  ctypes, file writes outside the work dir and reads outside the allow-list,
                  before the kernel says EPERM / EACCES

The kernel layers need Linux (seccomp >= 3.5, landlock >= 5.13, netns as root or
with unprivileged user namespaces); where one is unavailable it is reported as
such, never silently assumed.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import math
import os
import platform
import pwd
import resource
import stat
import struct
import sys
import time

from .errors import SandboxViolation

# ---------------------------------------------------------------- rlimits


def set_rlimits(memory_mb: int, cpu_seconds: int, file_size_mb: int = 64, open_files: int = 64) -> None:
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_mb << 20, file_size_mb << 20))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


cpu_used = time.process_time  # CPU seconds this process has used (what RLIMIT_CPU counts)


def call_cpu_budget(seconds: float | None, slack: float = 0.1):
    """A function that re-arms RLIMIT_CPU so that the next call may use `seconds` of CPU from now.

    RLIMIT_CPU counts the whole life of a process; re-arming its soft limit relative to the current
    usage before each request turns it into a per-call budget (SIGXCPU kills the worker, which the
    driver reports as `resource_limit` and restarts). The kernel counts whole seconds, so the budget
    is rounded up. Reading the CPU clock and setrlimit are two syscalls (~1 µs through the seccomp
    filter), so a request within `slack` wall-clock seconds of the last re-arm reuses it: the limit
    carries `slack` extra seconds, which a single thread cannot have used up in that time, so every
    call still gets at least `seconds` (between `seconds` and `seconds + slack + 1`). The hard limit
    set by `set_rlimits` stays the lifetime backstop: the soft limit never goes above it. `setrlimit`
    is not filtered by seccomp; untrusted code could raise its own soft limit, never past the backstop.
    """
    if not seconds or seconds <= 0:
        return lambda: None
    rl_cpu, setrlimit, clock, ceil, monotonic = (resource.RLIMIT_CPU, resource.setrlimit, time.process_time,
                                                 math.ceil, time.monotonic)
    hard = resource.getrlimit(rl_cpu)[1]
    cap = None if hard == resource.RLIM_INFINITY else max(hard - 1, 1)
    armed_at = [-slack - 1.0]

    def arm() -> None:
        now = monotonic()  # vDSO: no syscall
        if now - armed_at[0] < slack:
            return
        armed_at[0] = now
        soft = ceil(clock() + seconds + slack)
        setrlimit(rl_cpu, (soft if cap is None or soft < cap else cap, hard))

    return arm


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

_LL_EXECUTE, _LL_WRITE_FILE, _LL_READ_FILE, _LL_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_LL_REMOVE_DIR, _LL_REMOVE_FILE = 1 << 4, 1 << 5
_LL_MAKE = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_LL_REFER, _LL_TRUNCATE = 1 << 13, 1 << 14
_LL_FILE_RIGHTS = _LL_EXECUTE | _LL_WRITE_FILE | _LL_READ_FILE | _LL_TRUNCATE  # what a rule on a file may grant
_LL_READ = _LL_READ_FILE | _LL_READ_DIR

# What Python, glibc and C extensions read besides the interpreter's own folders: shared libraries
# (dlopen), the loader cache, locales, time zones, random/null devices, the CPU topology (cpu_count,
# BLAS thread pools). Only those that exist are allowed; none holds credentials.
SYSTEM_READ = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32", "/usr/local/lib",
               "/etc/ld.so.cache", "/usr/share/zoneinfo", "/etc/localtime", "/etc/timezone",
               "/usr/share/locale", "/usr/share/i18n", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random",
               "/sys/devices/system/cpu")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: no Landlock)."""
    if sys.platform != "linux":
        return 0
    abi = _libc.syscall(_nr("landlock_create_ruleset"), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(abi, 0)  # LANDLOCK_CREATE_RULESET_VERSION


def _landlock(handled: int, rules: list[tuple[str, int]]) -> bool:
    """One Landlock layer: every `handled` right is denied except below the paths `rules` grant it to.

    Layers stack (an access must pass each), so the write and read layers are independent. Paths that
    do not exist are skipped; a rule on a file grants only the file rights among its access.
    """
    nr_create, nr_add, nr_restrict = (_nr(n) for n in ("landlock_create_ruleset", "landlock_add_rule",
                                                         "landlock_restrict_self"))
    attr = ctypes.create_string_buffer(struct.pack("=Q", handled))
    ruleset = _libc.syscall(nr_create, attr, ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    access &= _LL_FILE_RIGHTS
                access &= handled
                if not access:
                    continue
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


def restrict_writes(workdir: str) -> bool:
    """Landlock: writes, creations and removals allowed only below `workdir` (and /dev/null)."""
    abi = landlock_abi()
    if abi < 1:
        return False
    handled = _LL_WRITE_FILE | _LL_REMOVE_DIR | _LL_REMOVE_FILE | _LL_MAKE
    if abi >= 2:
        handled |= _LL_REFER
    if abi >= 3:
        handled |= _LL_TRUNCATE
    return _landlock(handled, [(workdir, handled), ("/dev/null", _LL_WRITE_FILE | _LL_TRUNCATE)])


def restrict_reads(readable: list[str], executable: list[str] = ()) -> bool:
    """Landlock: reading files and listing directories only below `readable` (and `executable`);
    executing files only below `executable` (none by default: the worker never execs).

    READ_FILE, READ_DIR and EXECUTE exist since Landlock ABI 1. Metadata (stat, readlink) is not
    covered by Landlock: code can still learn that a path exists, not read it.
    """
    if landlock_abi() < 1:
        return False
    handled = _LL_READ | _LL_EXECUTE
    return _landlock(handled, [(p, _LL_READ) for p in readable] + [(p, _LL_READ | _LL_EXECUTE) for p in executable])


def _real(path: str) -> str:
    return os.path.realpath(os.fsdecode(path))


def _ld_so_conf_dirs() -> list[str]:
    """Library folders the dynamic loader is configured with (/etc/ld.so.conf.d/*.conf)."""
    out = []
    for conf in sorted(glob.glob("/etc/ld.so.conf.d/*.conf")):
        try:
            with open(conf) as f:
                out += [line.strip() for line in f if line.strip().startswith("/")]
        except OSError:
            pass
    return out


def _sensitive_roots() -> tuple[str, ...]:
    """$HOME and the project checkout (its results/, config/, caches): never readable as a whole."""
    try:
        home = _real(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        home = "/"
    return home, _real(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def _too_broad(path: str, sensitive: tuple[str, ...]) -> bool:
    """`/`, or a sensitive root or a folder above one. Python itself may live below $HOME (pyenv): fine."""
    prefix = path.rstrip(os.sep) + os.sep
    return path == "/" or any(s == path or s.startswith(prefix) for s in sensitive)


def _compact(paths: list[str]) -> list[str]:
    """Existing paths, without duplicates and without those already below another one."""
    out: list[str] = []
    for p in sorted(set(paths), key=len):
        if os.path.exists(p) and not any(p == q or p.startswith(q.rstrip(os.sep) + os.sep) for q in out):
            out.append(p)
    return out


def python_read_paths() -> list[str]:
    """Where this interpreter imports from: its prefixes, every existing sys.path entry, and the folder
    of every top-level package already imported (the editable `envfactory`, import shims). Entries that
    are too broad (the project checkout on sys.path, $HOME) are left out: only the packages imported
    from inside them stay readable."""
    sensitive = _sensitive_roots()
    roots = [_real(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path)
             if isinstance(p, str) and p]
    roots = [p for p in roots if not _too_broad(p, sensitive)]
    covered = tuple({q.rstrip(os.sep) + os.sep for p in roots
                     for q in (p, os.path.abspath(p))})  # lexical prefixes: most modules need no realpath
    for name, module in list(sys.modules.items()):
        if "." in name or module is None or name == "__main__":
            continue
        locations = list(getattr(module, "__path__", None) or [])
        file = getattr(module, "__file__", None)
        if not locations and isinstance(file, str):
            locations = [file]
        for loc in locations:
            if isinstance(loc, str) and loc and not loc.startswith(covered):
                real = _real(loc)
                if not _too_broad(real, sensitive):
                    roots.append(real)
    return _compact(roots)


def read_allowlist(workdir: str, extra: list[str] = ()) -> list[str]:
    """Everything a sandbox worker may read: Python, `extra` (the environment package), the work dir,
    shared libraries, a few system files, and its own /proc/<pid> (not /proc/self: that name resolves
    per process)."""
    return _compact(python_read_paths() + [_real(p) for p in (*extra, workdir, *SYSTEM_READ, *_ld_so_conf_dirs(),
                                                               f"/proc/{os.getpid()}")])


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


class SandboxReadDenied(PermissionError, SandboxViolation):
    """A read or a listing outside the allow-list: a `SandboxViolation` (reported as such, with a clear
    message) that is also the PermissionError (EACCES) the kernel layer gives, so code that copes with
    unreadable paths keeps working - importlib rescanning a sys.path folder such as the project root."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def install_audit_hook(workdir: str, readable: list[str] | None = None) -> None:
    """Readable errors for what the kernel layers deny. `readable`: the read allow-list (None: reads unchecked)."""
    root = os.path.realpath(workdir) + os.sep
    forbidden = {k: v for k, v in _FORBIDDEN_EVENTS.items() if v is not None}
    read_dirs = tuple(p.rstrip(os.sep) + os.sep for p in readable or () if os.path.isdir(p))
    read_files = frozenset(p for p in readable or () if not os.path.isdir(p))
    realpath, fsdecode = os.path.realpath, os.fsdecode

    def inside(path) -> bool:
        try:
            p = realpath(fsdecode(path)) if not isinstance(path, int) else None
        except Exception:  # noqa: BLE001 - unresolvable path: treat as outside
            return False
        return p is None or p == "/dev/null" or (p + os.sep).startswith(root)

    def readable_path(path) -> bool:
        if isinstance(path, int):
            return True  # an fd already open
        try:
            p = realpath(fsdecode(path))
        except Exception:  # noqa: BLE001
            return False
        return p in read_files or (p + os.sep).startswith(read_dirs)

    def hook(event: str, args: tuple) -> None:
        reason = forbidden.get(event)
        if reason is not None:
            if event in ("os.remove", "os.rmdir", "os.rename", "os.truncate", "os.symlink", "os.link"):
                if all(inside(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))):
                    return
            raise SandboxViolation(f"sandbox: {reason} is not allowed ({event})")
        if event == "open":
            path, mode, flags = (args + (None, None, None))[:3]
            if path is None:
                return
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writing and not inside(path):
                raise SandboxViolation(f"sandbox: writing outside the work dir is not allowed ({path})")
            if readable is not None and not readable_path(path):
                raise SandboxReadDenied(errno.EACCES, f"sandbox: reading outside the environment's allowed "
                                        f"folders is not allowed ({path}); readable: the work dir, the package, "
                                        "Python", path)
        elif readable is not None and event in ("os.listdir", "os.scandir") and args:
            path = args[0]
            if path is not None and not readable_path(path):
                raise SandboxReadDenied(errno.EACCES, f"sandbox: listing a folder outside the environment's "
                                        f"allowed folders is not allowed ({path})", path)

    sys.addaudithook(hook)


def apply(workdir: str, memory_mb: int, cpu_seconds: int, read_paths: list[str] = (),
          confine_reads: bool = True) -> dict[str, bool]:
    """Confine the current process. Call once, after imports, before untrusted code.

    `read_paths`: what the worker must read besides Python and the work dir (the environment package).
    `cpu_seconds` is the lifetime backstop; per-call budgets are re-armed by `call_cpu_budget`.
    """
    os.chdir(workdir)
    sys.dont_write_bytecode = True
    readable = read_allowlist(workdir, list(read_paths)) if confine_reads else None
    layers = {"netns": isolate_network(), "landlock": restrict_writes(workdir),
              "landlock_read": restrict_reads(readable) if readable is not None else False}
    set_rlimits(memory_mb, cpu_seconds)
    layers["rlimits"] = True
    layers["seccomp"] = install_seccomp()
    install_audit_hook(workdir, readable)
    layers["audit_hook"] = True
    return layers
