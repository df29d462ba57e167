"""`envfactory check imports`: the repository's packages import each other without a cycle, and the check does
fail on a package that has one (module-level, function-level, relative imports; TYPE_CHECKING ones excluded)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from envfactory.cli import main
from envfactory.importcheck import check, package_graph

ROOT = Path(__file__).resolve().parents[1]


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_the_repository_has_no_package_import_cycle():
    proc = subprocess.run([sys.executable, "-m", "envfactory", "check", "imports"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no import cycles" in proc.stdout


def test_the_repository_graph_has_the_expected_layers():
    g = package_graph([ROOT / "envfactory", ROOT / "evals"])
    assert not g.has_edge("envfactory.llm", "envfactory.agent")            # tool-call parsing lives in llm
    assert not g.has_edge("envfactory.llm.providers", "envfactory.agent")
    assert not g.has_edge("envfactory.llm", "envfactory.llm.providers")    # the registry names them lazily
    assert g.has_edge("envfactory.llm.providers", "envfactory.llm")
    assert not g.has_edge("envfactory.catalog", "envfactory.env")          # the catalog is data + CATALOG_DIR
    for stage_pkg in ("envfactory.env", "envfactory.train", "envfactory.querygen", "envfactory.graph"):
        assert not g.has_edge(stage_pkg, "envfactory.config")              # stages read the cfg they are given


def test_a_module_level_cycle_fails(tmp_path, capsys):
    pkg = _write(tmp_path / "knot", {
        "__init__.py": "",
        "a/__init__.py": "from ..b.mod import thing\n",
        "b/__init__.py": "",
        "b/mod.py": "import knot.a\nthing = 1\n",
        "c.py": "from .a import thing  # root modules are units of their own: no cycle with knot.a\n",
    })
    assert main(["check", "imports", str(pkg)]) == 1
    out = capsys.readouterr().out
    assert "1 import cycle(s)" in out
    assert "knot.a -> knot.b -> knot.a" in out
    assert "knot.a:1 imports knot.b.mod" in out and "knot.b.mod:1 imports knot.a" in out


def test_function_level_imports_count_unless_top_level_and_type_checking_ones_do_not(tmp_path, capsys):
    pkg = _write(tmp_path / "lazy", {
        "__init__.py": "",
        "a/__init__.py": "from lazy.b import helper\n",
        "b/__init__.py": """
            from typing import TYPE_CHECKING

            if TYPE_CHECKING:
                from lazy.a import Model


            def helper():
                from lazy import a
                return a
            """,
    })
    assert check([pkg]) == 1
    assert "lazy.b:9 imports lazy.a (in a function)" in capsys.readouterr().out
    assert check([pkg], top_level_only=True) == 0
    capsys.readouterr()
    g = package_graph([pkg], top_level_only=True, type_checking=True)  # the annotation-only import, when asked
    assert g.has_edge("lazy.b", "lazy.a") and g.edges["lazy.b", "lazy.a"]["imports"][0].line == 5


def test_a_namespace_package_and_an_acyclic_tree_pass(tmp_path, capsys):
    pkg = _write(tmp_path / "tree", {
        "__init__.py": "",
        "core/x.py": "VALUE = 1\n",            # no __init__.py: still a package (as envfactory/graph/ is)
        "core/y.py": "from .x import VALUE\n",
        "top/__init__.py": "from ..core import y\nfrom tree import core\n",
    })
    assert check([pkg]) == 0
    assert "no import cycles" in capsys.readouterr().out
    assert list(package_graph([pkg]).edges) == [("tree.top", "tree.core")]


def test_a_missing_root_is_a_usage_error(tmp_path):
    assert check([tmp_path / "nope"]) == 2
