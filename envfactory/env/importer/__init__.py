"""Import environments released in the paper's format into EnvFactory packages.

* `import_release` (`envfactory envs import-release`, `release.py`): the whole public release, as published
  (the module's @mcp.tool() functions are the tools), validated by executing it in the sandbox.
* `import_paper_env` (`envfactory envs import`, below): one plain class and its files, given explicitly.
  Input: metadata JSON (`class_name`, `description`, `tools[]` with
`input_schema`/`output_schema`), the Python module defining the class with
`load_scenario`/`save_scenario`, and scenario JSON files. Output: a package
folder whose `env.py` wraps the class (see `adapter.py`). The module is copied,
never imported here: it is untrusted and only runs in the sandbox.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ...io import atomic_write_json, atomic_write_text
from ..spec import EnvSpec
from .release import ImportReport, ReleaseError, import_release  # noqa: F401 - the package's API

_ENV_TEMPLATE = '''"""Imported from the paper's released format; the original module is paper_env.py."""
import importlib.util
import pathlib
import sys

from envfactory.env.adapter import wrap_paper_class

_spec = importlib.util.spec_from_file_location("paper_env_{name}", pathlib.Path(__file__).with_name("paper_env.py"))
_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _module
_spec.loader.exec_module(_module)

{class_name} = wrap_paper_class(_module.{class_name}, {tools!r}, name={name!r}, domain={domain!r})
'''


def import_paper_env(metadata: Path, module: Path, out: Path, scenarios: list[Path], domain: str = "imported",
                     tests: Path | None = None) -> Path:
    meta = json.loads(metadata.read_text())
    spec = EnvSpec.from_paper_metadata(meta, domain=meta.get("domain", domain))
    if not scenarios:
        raise ValueError("at least one scenario file is needed (the initial state the class loads)")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(module, out / "paper_env.py")
    atomic_write_text(out / "env.py", _ENV_TEMPLATE.format(name=spec.name, class_name=spec.class_name,
                                                           tools=[t.name for t in spec.tools], domain=spec.domain))
    atomic_write_json(out / "spec.json", spec.model_dump(mode="json"))
    for s in scenarios:
        atomic_write_json(out / "scenarios" / f"{s.stem}.json", json.loads(s.read_text()))
    if tests is not None:
        atomic_write_json(out / "tests.json", json.loads(tests.read_text()))
    return out
