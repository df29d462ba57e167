"""The bundled, hand-written environments (7 domains x 2).

Each sub-folder is an environment package (see `envfactory.env.package`). The
catalog is held to the same admission checks as synthesized environments:
its validation cases must pass in the sandbox.
"""

from __future__ import annotations

from pathlib import Path

CATALOG_DIR = Path(__file__).resolve().parent


def catalog_packages() -> list[Path]:
    return sorted(p for p in CATALOG_DIR.iterdir() if (p / "spec.json").is_file())
