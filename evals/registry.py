"""The benchmark registry: one line per benchmark, the single source of config validation, CLI choices, the
Snakemake `bench` wildcard and the contamination audit. Lazy, as lm-evaluation-harness's registries are: a line
names `module:Class` (and the module's contamination loader), and nothing is imported until it is used, so
`import envfactory.config` never loads an adapter.

Adding a benchmark = its module + one line here. Plugins outside this package: `ENVFACTORY_BENCHMARKS` =
`name=module:Class[@module:loader],...` (read at import, e.g. for a private suite), or the entry-point group
`envfactory.benchmarks` of an installed package (value `module:Class[@module:loader]`).
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from typing import Any, NamedTuple


class Entry(NamedTuple):
    adapter: str                    # "module:Class" with a `run(EvalContext) -> BenchmarkResult` method
    contamination: str | None = None  # "module:function" returning the benchmark's tools and data (BenchData)
    fetch: str | None = None        # "module:function(dest, url=..., sha256=...) -> Path": data fetched on request
                                    # (`envfactory benchmarks fetch NAME DEST`); None = nothing to fetch


BUILTIN: dict[str, Entry] = {
    "bfcl": Entry("evals.bfcl:BFCL", "evals.contamination:load_bfcl"),
    "tau2": Entry("evals.tau2:Tau2", "evals.contamination:load_tau2"),
    "mcp_atlas": Entry("evals.mcp_atlas:MCPAtlas", "evals.contamination:load_mcp_atlas",
                       "evals.mcp_atlas:fetch_full_set"),
    "vitabench": Entry("evals.vitabench:VitaBench", "evals.contamination:load_vitabench"),
    "capability": Entry("evals.capability:Capability", "evals.capability:load_contamination"),
}
ENV_VAR = "ENVFACTORY_BENCHMARKS"


def _parse(value: str) -> Entry:
    adapter, _, loader = value.partition("@")
    return Entry(adapter.strip(), loader.strip() or None)


def _plugins() -> dict[str, Entry]:
    found = {ep.name: _parse(ep.value) for ep in entry_points(group="envfactory.benchmarks")}
    for item in filter(None, (x.strip() for x in os.environ.get(ENV_VAR, "").split(","))):
        name, sep, value = item.partition("=")
        if not sep or ":" not in value:
            raise ValueError(f"{ENV_VAR}: expected name=module:Class[@module:loader], got {item!r}")
        found[name.strip()] = _parse(value)
    return found


REGISTRY: dict[str, Entry] = {**BUILTIN, **_plugins()}


def benchmark_names() -> list[str]:
    return list(REGISTRY)


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_benchmark(name: str):
    """An instance of the benchmark's adapter (its module imported now, not before)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; registered: {benchmark_names()}")
    cls = _resolve(REGISTRY[name].adapter)
    cls.name = name
    return cls()


def fetcher(name: str):
    """The benchmark's data fetcher (its module imported now), or None when it has nothing to fetch."""
    if name not in REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; registered: {benchmark_names()}")
    ref = REGISTRY[name].fetch
    return _resolve(ref) if ref else None


def contamination_loaders() -> dict[str, Any]:
    """name -> zero-argument loader of the benchmark's tools and data, for every benchmark that has one."""
    return {name: _lazy_loader(e.contamination) for name, e in REGISTRY.items() if e.contamination}


def _lazy_loader(ref: str):
    def load(*args, **kwargs):
        return _resolve(ref)(*args, **kwargs)

    load.__name__ = ref
    return load
