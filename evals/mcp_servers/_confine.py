"""Launcher: confine this process, then exec the given command (which inherits the confinement).

`python _confine.py <write_root> <memory_mb> <cpu_seconds> -- cmd args...`. Reuses the project's
lockdown layers that survive exec: a private empty network namespace (no network), landlock (writes
only below write_root) and rlimits. Seccomp and the audit hook are left out on purpose: they forbid
exec itself. A layer the kernel refuses is reported on stderr, not silently assumed.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main() -> None:
    write_root, memory_mb, cpu_s, sep, *argv = sys.argv[1:]
    assert sep == "--" and argv, "usage: _confine.py WRITE_ROOT MEMORY_MB CPU_S -- CMD..."
    from envfactory.env import lockdown

    missing = [name for name, ok in (("netns", lockdown.isolate_network()),
                                     ("landlock", lockdown.restrict_writes(write_root))) if not ok]
    if os.environ.get("MCP_SANDBOX_REQUIRE_NETNS") == "1" and "netns" in missing:
        sys.stderr.write("sandbox: no private network namespace; refusing to run\n")
        sys.exit(126)
    lockdown.set_rlimits(int(memory_mb), int(cpu_s), file_size_mb=64, open_files=256)
    if missing:
        sys.stderr.write(f"sandbox: layers unavailable here: {', '.join(missing)}\n")
    os.execvpe(argv[0], argv, os.environ)


if __name__ == "__main__":
    main()
