"""Launcher: confine this process, then exec the given command (which inherits the confinement).

`python _confine.py <write_root> <memory_mb> <cpu_seconds> -- cmd args...`, started in the data root
(the run's `/data` copy). Reuses the project's lockdown layers that survive exec: a private empty
network namespace (no network), landlock for writes (only below write_root), landlock for reads
(only the data root, write_root, the Python installation, the program's own install folder, system
binaries and libraries and a few harmless system files: never $HOME, /etc/shadow, caches or other
processes' /proc) and rlimits. Seccomp and the audit hook are left out on purpose: they forbid exec
itself. A layer the kernel refuses is reported on stderr, not silently assumed.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# Executables and what they load: interpreters and coreutils, their libraries.
EXEC_DIRS = ("/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/sbin", "/usr/libexec")
# Read-only extras for command-line tools and plotting code (user/group names for `ls -l`, fonts,
# terminal descriptions, CPU and memory sizes for thread pools). None holds credentials.
RUNNER_READ = ("/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/fonts", "/usr/share/fonts",
               "/usr/share/terminfo", "/etc/mime.types", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat",
               "/sys/fs/cgroup")


def allowlists(write_root: str, program: str) -> tuple[list[str], list[str]]:
    """(readable, readable and executable) paths for a run of `program` in the current directory."""
    from envfactory.env import lockdown

    executable = [*lockdown.python_read_paths(), *EXEC_DIRS, *lockdown._ld_so_conf_dirs(),
                  *(p for p in lockdown.SYSTEM_READ if "/lib" in p)]
    executable = lockdown._compact([os.path.realpath(p) for p in executable])
    found = shutil.which(program)
    real = os.path.realpath(found) if found else ""
    if real and not any(real.startswith(p.rstrip(os.sep) + os.sep) for p in executable):
        # An interpreter installed elsewhere (e.g. node under ~/.nvm): its install folder, never $HOME.
        prefix = os.path.dirname(os.path.dirname(real))
        executable.append(prefix if not lockdown._too_broad(prefix, lockdown._sensitive_roots())
                          else os.path.dirname(real))
    readable = [os.getcwd(), write_root, *lockdown.SYSTEM_READ, *RUNNER_READ, f"/proc/{os.getpid()}"]
    return lockdown._compact([os.path.realpath(p) for p in readable]), executable


def main() -> None:
    write_root, memory_mb, cpu_s, sep, *argv = sys.argv[1:]
    assert sep == "--" and argv, "usage: _confine.py WRITE_ROOT MEMORY_MB CPU_S -- CMD..."
    from envfactory.env import lockdown

    readable, executable = allowlists(write_root, argv[0])
    missing = [name for name, ok in (("netns", lockdown.isolate_network()),
                                     ("landlock", lockdown.restrict_writes(write_root)),
                                     ("landlock_read", lockdown.restrict_reads(readable, executable))) if not ok]
    if os.environ.get("MCP_SANDBOX_REQUIRE_NETNS") == "1" and "netns" in missing:
        sys.stderr.write("sandbox: no private network namespace; refusing to run\n")
        sys.exit(126)
    lockdown.set_rlimits(int(memory_mb), int(cpu_s), file_size_mb=64, open_files=256)
    if missing:
        sys.stderr.write(f"sandbox: layers unavailable here: {', '.join(missing)}\n")
    os.execvpe(argv[0], argv, os.environ)


if __name__ == "__main__":
    main()
