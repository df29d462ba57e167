"""Sandbox worker: loads one environment package, confines itself, then serves tool calls.

Started by `envfactory.env.sandbox.SandboxedEnv`; never imported by the driver
for execution. Requests are JSON arrays `[op, *args]`; responses JSON objects
`{"ok": ...}` or `{"error": {"kind", "message"}}`.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    cfg = json.loads(sys.argv[1])
    # Protocol on private fds; anything the environment prints goes to stderr (a log file).
    rfd, wfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)

    from . import lockdown
    from .errors import ErrorKind
    from .package import EnvPackage, import_env_class
    from .runtime import EnvRuntime, classify, error_json
    from .wire import WireClosed, read_frame, write_frame

    # Everything trusted is read before confinement; env.py is only imported after it.
    package = EnvPackage(cfg["package"])
    spec = package.spec
    scenarios = {sid: package.scenario(sid) for sid in package.scenario_ids()}
    import jsonschema.validators  # noqa: F401 - warm imports the runtime needs
    import pydantic  # noqa: F401

    layers = lockdown.apply(cfg["workdir"], cfg["memory_mb"], cfg["cpu_seconds"], read_paths=[cfg["package"]])
    missing = [layer for layer in cfg.get("require_layers", []) if not layers.get(layer)]
    if missing:
        write_frame(wfd, error_json(ErrorKind.sandbox_violation,
                                    f"required sandbox layers unavailable: {missing}").encode())
        return
    try:
        runtime = EnvRuntime(spec, import_env_class(package), scenarios)
    except BaseException as exc:  # noqa: BLE001 - a broken env.py is reported, not raised
        kind, message = classify("import", exc)
        write_frame(wfd, error_json(kind, f"loading {package.root.name}/env.py failed: {message}").encode())
        return
    write_frame(wfd, json.dumps({"ok": {"layers": layers}}).encode())

    call_json = runtime.call_json
    arm_cpu = lockdown.call_cpu_budget(cfg.get("call_cpu_seconds"))  # per-call CPU budget, re-armed per request
    cpu_used = lockdown.cpu_used
    while True:
        try:
            request = json.loads(read_frame(rfd))
        except WireClosed:
            return
        arm_cpu()
        op = request[0]
        try:
            if op == "call":
                response = call_json(request[1], request[2])
            elif op == "reset":
                runtime.reset(request[1])
                response = '{"ok":null,"cpu":%.2f}' % cpu_used()  # the driver recycles long-lived workers
            elif op == "state":
                response = json.dumps({"ok": runtime.env._state_view()}, ensure_ascii=False)
            elif op == "hash":
                response = json.dumps({"ok": runtime.state_hash()})
            elif op == "ping":
                response = '{"ok":"pong"}'
            else:
                response = error_json(ErrorKind.exception, f"unknown op {op!r}")
        except BaseException as exc:  # noqa: BLE001
            response = error_json(*classify(op, exc))
        write_frame(wfd, response.encode())


if __name__ == "__main__":
    main()
