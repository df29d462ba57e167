"""`calculator` server: one tool, `calculate(expression)`, after PyPI `mcp-server-calculator` 0.2.1.

Same evaluator semantics (an AST walk over + - * / // % **, unary minus, names and functions of
`math`; `^`, `×`, `÷` accepted) and the same output (`str(result)`). Added guards, since the
expression comes from a model: no attribute access, bounded exponents and factorial-like arguments,
so one call cannot pin a core or exhaust memory.
"""

from __future__ import annotations

import ast
import math
import operator

from ._base import ToolDef, build_server, obj, serve_stdio

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow, ast.USub: operator.neg}
_NAMES = {k: getattr(math, k) for k in dir(math) if not k.startswith("__")}
_NAMES.update({"pi": math.pi, "e": math.e})
_MAX_RESULT_BITS = 100_000
_BIG_ARG_FUNCS = {math.factorial, math.comb, math.perm, math.lcm, math.gcd, math.isqrt}


def _check_pow(base, exp) -> None:
    if (isinstance(base, int) and isinstance(exp, int) and abs(base) > 1 and exp > 0
            and exp * abs(base).bit_length() > _MAX_RESULT_BITS):
        raise ValueError("Result too large")


def evaluate(expression: str) -> str:
    def ev(node):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (int, float, complex)) and not isinstance(node.value, bool):
                return node.value
            raise ValueError(f"Unsupported constant: {node.value!r}")
        if isinstance(node, ast.Name):
            if node.id in _NAMES:
                return _NAMES[node.id]
            raise ValueError(f"Unknown identifier: {node.id}")
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow):
                _check_pow(left, right)
            if isinstance(node.op, ast.Mult) and isinstance(left, int) and isinstance(right, int) and \
                    left.bit_length() + right.bit_length() > _MAX_RESULT_BITS:
                raise ValueError("Result too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Call) and not node.keywords:
            func = ev(node.func)
            if not callable(func):
                raise ValueError("Unsupported operation: call of a non-function")
            args = [ev(a) for a in node.args]
            if func in _BIG_ARG_FUNCS and any(isinstance(a, int) and abs(a) > 10_000 for a in args):
                raise ValueError("Argument too large")
            if func is math.pow and len(args) == 2:
                _check_pow(*args)
            return func(*args)
        raise ValueError(f"Unsupported operation: {ast.dump(node)}")

    expression = expression.replace("^", "**").replace("×", "*").replace("÷", "/")
    return str(ev(ast.parse(expression, mode="eval").body))


TOOLS = [ToolDef("calculate", "Calculates/evaluates the given expression.",
                 {**obj({"expression": {"title": "Expression", "type": "string"}}, ["expression"]),
                  "title": "calculateArguments"},
                 lambda args: evaluate(args["expression"]))]


def main() -> None:
    # FastMCP (which upstream uses) reports a raised error as "Error executing tool <name>: <message>".
    serve_stdio(build_server("calculator", "0.2.1", TOOLS, error_prefix=lambda t: f"Error executing tool {t}: "))


if __name__ == "__main__":
    main()
