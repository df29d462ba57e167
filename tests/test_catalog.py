"""The bundled catalog meets its contract and passes admission in the sandbox."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from envfactory.catalog import catalog_packages
from envfactory.env.catalog_check import render_spec
from envfactory.env.package import EnvPackage
from envfactory.env.verify import verify_package

PACKAGES = [EnvPackage(p) for p in catalog_packages()]
IDS = [p.name for p in PACKAGES]


def test_catalog_size_and_domains():
    domains = Counter(p.spec.domain for p in PACKAGES)
    assert len(PACKAGES) >= 14
    assert len(domains) >= 7
    assert all(n >= 2 for n in domains.values()), domains


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_package_contract(package):
    spec = package.spec
    assert spec.name == package.root.name
    assert len(spec.tools) >= 6
    assert len(package.scenario_ids()) >= 2
    for sid in package.scenario_ids():
        tables = [v for v in package.scenario(sid).values() if isinstance(v, (dict, list))]
        assert max(len(t) for t in tables) >= 20, f"{sid}: main entity needs >= 20 rows"
    # Real dependencies: some tool's output field name is another tool's required input.
    produced = {k for t in spec.tools for k in json.dumps(t.output_schema).split('"') if k.endswith("_id")}
    consumed = {p for t in spec.tools for p in t.input_schema.get("required", []) if p.endswith("_id")}
    assert produced & consumed, "no id produced by one tool and consumed by another"


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_spec_is_generated_from_code(package):
    """spec.json must match the class it describes (regenerate with `envfactory catalog check`)."""
    assert (package.root / "spec.json").read_text() == render_spec(package.root)


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_package_verifies_in_sandbox(package):
    report = verify_package(package)
    assert report.verified, report.problems
    kinds = {s["expect_error"] for c in package.tests()["cases"] for s in c["steps"] if s.get("expect_error")}
    assert {"domain_error", "invalid_arguments"} <= kinds
