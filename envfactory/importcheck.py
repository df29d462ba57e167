"""`envfactory check imports`: no import cycle between the project's packages.

Every module under the given roots (default: `envfactory/` and `evals/`) is parsed with `ast`, never imported.
Each import statement — absolute or relative, `import a.b` or `from a import b`, at module level or inside a
function — becomes an edge from the importing module's *unit* to the imported module's unit; the cycles of that
graph (networkx) are printed and make the command exit 1.

Units. A module in a subpackage belongs to that subpackage (`envfactory/llm/providers/local.py` ->
`envfactory.llm.providers`; a folder of modules without `__init__.py`, such as `envfactory/graph/`, counts as a
package too). A module directly in a root package is a unit of its own (`envfactory.config`, `envfactory.cli`,
`evals.base`): a root is a collection of top-level modules, and one node for all of them would put every package
in a cycle (`envfactory.cli` imports every stage, every stage imports `envfactory.io`). Importing `a.b.c` is an
edge to `c`'s unit only, not to the parents whose `__init__` Python runs on the way (the project's `__init__`
files import nothing eagerly, or lazily by PEP 562).

What counts:
- module-level imports, always;
- imports inside functions, by default. A function-level import defers *when* a module loads, not *which*
  package depends on which; the project uses them to keep start-up light (the CLI, heavy optional packages),
  never to break a cycle, so they belong to the graph this check guards. `--top-level` drops them (the graph
  of what Python executes at import time);
- not imports under `if TYPE_CHECKING:`: they never run. The stage bodies (`run_*_stage(cfg, ...)` in `env/`,
  `graph/`, `querygen/`, `envgen/`, `train/`) annotate `cfg: ExperimentConfig` that way, because
  `envfactory.config` composes the settings models that live beside them (`env/limits.py`,
  `train/settings.py`). `--type-checking` counts them too, and then shows that annotation-only dependency;
- not strings that name modules (`"module:Class"` in the lazy registries `llm/registry.py`,
  `evals/registry.py`), nor `importlib.import_module` calls: that is how a registry names its entries without
  depending on them.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

DEFAULT_ROOTS = ("envfactory", "evals")


@dataclass(frozen=True)
class Module:
    name: str         # dotted module name
    path: Path | None  # None: a folder without __init__.py (a namespace package)
    package: bool     # an __init__.py or such a folder
    unit: str         # the graph node it belongs to


@dataclass(frozen=True)
class Import:
    source: str       # importing module
    target: str       # imported module (the longest known prefix of what the statement names)
    line: int
    lazy: bool        # inside a function


def default_roots() -> list[Path]:
    here = Path(__file__).resolve().parent.parent
    return [here / r for r in DEFAULT_ROOTS]


def discover(root: Path) -> dict[str, Module]:
    """Every module of the package folder `root` (its folder name is the top-level package's name)."""
    root = root.resolve()
    out: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts = parts[:-1]
        if not all(p.isidentifier() for p in parts):
            continue  # not importable by that name (a folder such as `__pycache__` or `my-data`)
        name = ".".join(parts)
        pkg = parts if package else parts[:-1]
        out[name] = Module(name, path, package, name if len(pkg) <= 1 and not package else ".".join(pkg))
        for i in range(1, len(pkg) + 1):  # folders without __init__.py are importable (namespace) packages
            parent = ".".join(pkg[:i])
            out.setdefault(parent, Module(parent, None, True, parent))
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_imports(module: Module, known: set[str], type_checking: bool = False) -> list[Import]:
    """The project-internal imports of one module (imports of anything outside `known` are dropped)."""
    if module.path is None:
        return []
    tree = ast.parse(module.path.read_bytes(), filename=str(module.path))
    here = module.name.split(".") if module.package else module.name.split(".")[:-1]
    found: list[Import] = []

    def longest_known(name: str) -> str | None:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in known:
                return ".".join(parts[:i])
        return None

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if target := longest_known(alias.name):
                        found.append(Import(module.name, target, child.lineno, lazy))
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: `from .x import y`, `from .. import y`
                    base = ".".join(here[: len(here) - child.level + 1] + ([child.module] if child.module else []))
                else:
                    base = child.module or ""
                for alias in child.names:  # `from pkg import mod` names a module, `from mod import name` not
                    target = (longest_known(f"{base}.{alias.name}") if alias.name != "*" else None) \
                        or longest_known(base)
                    if target:
                        found.append(Import(module.name, target, child.lineno, lazy))
            elif isinstance(child, ast.If) and _is_type_checking(child.test) and not type_checking:
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), lazy)
            else:
                visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def package_graph(roots: list[Path], top_level_only: bool = False, type_checking: bool = False) -> nx.DiGraph:
    """Units as nodes; an edge u -> v carries `imports`, the `Import`s behind it."""
    modules: dict[str, Module] = {}
    for root in roots:
        modules.update(discover(root))
    g = nx.DiGraph()
    g.add_nodes_from(sorted({m.unit for m in modules.values()}))
    for m in modules.values():
        for imp in module_imports(m, set(modules), type_checking):
            target = modules[imp.target].unit
            if target == m.unit or (top_level_only and imp.lazy):
                continue
            if not g.has_edge(m.unit, target):
                g.add_edge(m.unit, target, imports=[])
            g.edges[m.unit, target]["imports"].append(imp)
    return g


def find_cycles(g: nx.DiGraph, limit: int = 50) -> list[list[str]]:
    """Elementary cycles (at most `limit`), shortest first, each starting at its smallest node."""
    cycles = []
    for cycle in nx.simple_cycles(g):
        i = cycle.index(min(cycle))
        cycles.append(cycle[i:] + cycle[:i])
        if len(cycles) >= limit:
            break
    return sorted(cycles, key=lambda c: (len(c), c))


def describe(g: nx.DiGraph, cycle: list[str], sites: int = 3) -> str:
    """A cycle and, per edge, the first import statements that make it."""
    lines = [" -> ".join(cycle + cycle[:1])]
    for a, b in zip(cycle, cycle[1:] + cycle[:1]):
        seen = sorted({(i.source, i.line, i.target, i.lazy) for i in g.edges[a, b]["imports"]})
        for source, line, target, lazy in seen[:sites]:
            lines.append(f"    {source}:{line} imports {target}" + (" (in a function)" if lazy else ""))
    return "\n".join(lines)


def check(roots: list[Path], top_level_only: bool = False, type_checking: bool = False, out=None) -> int:
    """Print the graph's size and its cycles; exit status 1 when there is one, 2 for a bad root, else 0."""
    out = out or sys.stdout
    missing = [str(r) for r in roots if not Path(r).is_dir()]
    if missing:
        print(f"error: not a package folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    g = package_graph([Path(r) for r in roots], top_level_only, type_checking)
    counted = "module-level" if top_level_only else "module- and function-level"
    counted += " imports" + (", TYPE_CHECKING ones included" if type_checking else "")
    print(f"{g.number_of_nodes()} packages/modules, {g.number_of_edges()} dependencies ({counted}) under "
          f"{', '.join(Path(r).name for r in roots)}", file=out)
    cycles = find_cycles(g)
    if not cycles:
        print("no import cycles", file=out)
        return 0
    print(f"{len(cycles)} import cycle(s){' (first 50)' if len(cycles) >= 50 else ''}:", file=out)
    for c in cycles:
        print(describe(g, c), file=out)
    return 1
