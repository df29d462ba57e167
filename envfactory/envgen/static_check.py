"""Static pre-check of generated environment code, before it is ever run (in the sandbox).

An allowlist of imports and a denylist of builtins and dunder attributes: cheap,
clear rejections for the obvious cases. It is not the security boundary — the
sandbox is — but it saves a sandbox round and gives the code agent a precise reason.
"""

from __future__ import annotations

import ast

ALLOWED_MODULES = {
    "__future__", "typing", "typing_extensions", "dataclasses", "enum", "datetime", "math", "re", "json",
    "collections", "itertools", "functools", "decimal", "fractions", "statistics", "string", "copy", "textwrap",
    "pydantic", "envfactory.env",
}
FORBIDDEN_CALLS = {"open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "breakpoint",
                   "input", "getattr", "setattr", "delattr", "memoryview"}


def check_code(code: str) -> list[str]:
    """Problems found; empty when the code may be run in the sandbox."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"syntax error line {exc.lineno}: {exc.msg}"]
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else ["<relative import>"]
        else:
            names = []
        for name in names:
            if name not in ALLOWED_MODULES and name.split(".")[0] not in {"typing", "collections"}:
                problems.append(f"line {node.lineno}: import of {name!r} is not allowed "
                                f"(allowed: {', '.join(sorted(ALLOWED_MODULES))})")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            problems.append(f"line {node.lineno}: call to {node.func.id}() is not allowed")
        if isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__") \
                and node.attr not in ("__init__", "__name__", "__doc__"):
            problems.append(f"line {node.lineno}: access to {node.attr} is not allowed")
        if isinstance(node, ast.Name) and node.id in ("__builtins__", "__loader__", "__spec__"):
            problems.append(f"line {node.lineno}: use of {node.id} is not allowed")
    return problems
