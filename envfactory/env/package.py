"""An environment package on disk: `spec.json`, `env.py`, `scenarios/*.json`, `tests.json`.

Reading the files is safe anywhere; *importing* `env.py` runs its code, which
only ever happens inside a sandbox worker (or in trusted tooling such as
`envfactory envs build-spec` on the hand-written catalog).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from functools import cached_property
from pathlib import Path

from .spec import EnvSpec

SPEC_FILE, CODE_FILE, TESTS_FILE, SCENARIO_DIR = "spec.json", "env.py", "tests.json", "scenarios"


class EnvPackage:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        if not (self.root / SPEC_FILE).is_file() or not (self.root / CODE_FILE).is_file():
            raise FileNotFoundError(f"{self.root} is not an environment package (needs {SPEC_FILE} and {CODE_FILE})")

    @cached_property
    def spec(self) -> EnvSpec:
        return EnvSpec.model_validate_json((self.root / SPEC_FILE).read_text())

    @property
    def name(self) -> str:
        return self.spec.name

    def scenario_ids(self) -> list[str]:
        return sorted(p.stem for p in (self.root / SCENARIO_DIR).glob("*.json"))

    def scenario(self, scenario_id: str) -> dict:
        path = self.root / SCENARIO_DIR / f"{scenario_id}.json"
        if not path.is_file():
            raise KeyError(f"{self.name}: no scenario {scenario_id!r} (have {self.scenario_ids()})")
        return json.loads(path.read_text())

    def tests(self) -> dict:
        path = self.root / TESTS_FILE
        return json.loads(path.read_text()) if path.is_file() else {"cases": []}

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                      and p.name != "report.json")

    def content_hash(self) -> str:
        """sha256 over every file of the package: the key of cached verification reports."""
        h = hashlib.sha256()
        for p in self.files():
            h.update(str(p.relative_to(self.root)).encode() + b"\0" + p.read_bytes() + b"\0")
        return h.hexdigest()


def package_dirs(paths) -> list[Path]:
    """Expand `envs.extra_dirs`: each entry is a package folder, or a folder of packages (such as the output
    of `envfactory envs import-release`), which stands for the packages directly inside it, sorted (its
    `rejected/` and hidden folders are not packages). Anything else is kept as given, so that loading it
    reports what is wrong with it."""
    out: list[Path] = []
    for entry in paths:
        root = Path(entry)
        if (root / SPEC_FILE).is_file() or not root.is_dir():
            out.append(root)
            continue
        inner = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                       and (p / SPEC_FILE).is_file() and (p / CODE_FILE).is_file())
        out.extend(inner if inner else [root])
    return out


def known_envs(extra_dirs: list[str] = ()) -> dict[str, str]:
    """name -> domain of the bundled catalog and of the packages in `extra_dirs` (their spec.json only: cheap,
    nothing imported). Synthesized environments are not known before the envs stage."""
    from ..catalog import catalog_packages

    known = {}
    for spec in [p / SPEC_FILE for p in catalog_packages()] + [d / SPEC_FILE for d in package_dirs(extra_dirs)]:
        try:
            data = json.loads(spec.read_text())
            known[data["name"]] = data.get("domain", "unknown")
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a missing or broken package fails in the envs stage, with its own message
    return known


def import_env_class(package: EnvPackage):
    """Import `env.py` and return the class named by the spec. Runs untrusted code: sandbox only."""
    mod_name = f"envfactory_env_{package.name}_{abs(hash(str(package.root)))}"
    spec = importlib.util.spec_from_file_location(mod_name, package.root / CODE_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    cls = getattr(module, package.spec.class_name, None)
    if cls is None:
        raise ImportError(f"{CODE_FILE} defines no class {package.spec.class_name!r}")
    return cls
