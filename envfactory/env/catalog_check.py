"""Author tooling for the hand-written catalog (trusted code only). It lives beside the runtime it drives rather
than in `envfactory/catalog/`, which holds only the packages and `CATALOG_DIR` (the `envs` stage reads it).

    envfactory catalog check NAME [NAME ...]   # regenerate spec.json, run cases in-process
    envfactory catalog check --all
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from envfactory.catalog import CATALOG_DIR
from envfactory.env.base import Environment
from envfactory.env.cases import CaseSet, run_cases
from envfactory.env.runtime import EnvRuntime
from envfactory.env.spec import spec_from_class


def load_class(path: Path) -> type[Environment]:
    spec = importlib.util.spec_from_file_location(f"catalog_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    classes = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, Environment)
               and v is not Environment and v.__module__ == module.__name__]
    if len(classes) != 1:
        raise SystemExit(f"{path}: expected exactly one Environment subclass, found {classes}")
    return classes[0]


def render_spec(env_dir: Path) -> str:
    return json.dumps(spec_from_class(load_class(env_dir / "env.py")).model_dump(), indent=2) + "\n"


def check(env_dir: Path) -> list[str]:
    problems: list[str] = []
    cls = load_class(env_dir / "env.py")
    spec = spec_from_class(cls)
    (env_dir / "spec.json").write_text(json.dumps(spec.model_dump(), indent=2) + "\n")
    if spec.name != env_dir.name:
        problems.append(f"name {spec.name!r} != folder {env_dir.name!r}")
    if len(spec.tools) < 6:
        problems.append(f"only {len(spec.tools)} tools (need >= 6)")
    scen_files = sorted((env_dir / "scenarios").glob("*.json"))
    if len(scen_files) < 2:
        problems.append(f"only {len(scen_files)} scenarios (need >= 2)")
    scenarios = {}
    for f in scen_files:
        data = json.loads(f.read_text())
        scenarios[f.stem] = data
        biggest = max((len(v) for v in data.values() if isinstance(v, (dict, list))), default=0)
        if biggest < 20:
            problems.append(f"scenario {f.stem}: largest table has {biggest} rows (need >= 20)")
    rt = EnvRuntime(spec, cls, scenarios)
    cases = CaseSet.model_validate_json((env_dir / "tests.json").read_text())
    kinds = {s.expect_error for c in cases.cases for s in c.steps if s.expect_error}
    if "domain_error" not in kinds or "invalid_arguments" not in kinds:
        problems.append(f"tests need domain_error and invalid_arguments failure cases (have {sorted(kinds)})")
    tools_tested = {s.tool for c in cases.cases for s in c.steps}
    untested = [t.name for t in spec.tools if t.name not in tools_tested]
    if untested:
        problems.append(f"tools without a validation step: {untested}")
    for res in run_cases(rt, cases, spec):
        if not res.passed:
            problems.append(f"case {res.name!r}: " + "; ".join(res.failures))
    return problems


def check_catalog(names: list[str], every: bool = False) -> int:
    """`envfactory catalog check`: 0 when every named (or, with `every`, every) catalog environment passes."""
    dirs = ([p for p in sorted(CATALOG_DIR.iterdir()) if (p / "env.py").is_file()] if every
            else [CATALOG_DIR / n for n in names])
    bad = 0
    for d in dirs:
        problems = check(d)
        print(f"{d.name}: {'OK' if not problems else 'FAIL'}")
        for p in problems:
            print(f"  - {p}")
        bad += bool(problems)
    return 1 if bad else 0
