"""Sweeps as config: `config/experiments/<name>.yaml` files with a top-level `sweep:` key.

A sweep is a base experiment, overrides shared by all its points, named variants (each a partial config) and
seeds. Expansion is a pure function from the sweep and the base config to one validated `ExperimentConfig`
per (variant, seed), whose outputs live in `results/<sweep>/<variant>-s<seed>/`. The Snakefile turns those
folders into values of its `{out}` wildcard, so every stage rule serves every point without copies.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .config import ExperimentConfig, SweepMember

NAME = r"^[A-Za-z0-9_.-]+$"


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sweep: str = Field(pattern=NAME, description="name; outputs go to results/<sweep>/")
    description: str = ""
    base: str | list[str] | None = Field(
        None, description="experiment YAML file(s) the points start from (relative to this file, merged in order); "
                          "null = the invocation's config (config/config.yaml + --configfile)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="applied to every point")
    variants: dict[str, dict[str, Any]] = Field(min_length=1, description="variant name -> partial config")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    plot: Literal["line", "bar"] = Field("bar", description="line: metric against `x`; bar: one bar per variant")
    x: Literal["train_envs"] | None = Field(None, description="line plots: numeric axis read from each point's "
                                                              "manifest (train_envs = admitted training envs)")
    metrics: list[str] = Field(default_factory=lambda: ["heldout"],
                               description="plotted: heldout | <benchmark> | <benchmark>.<category>")

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, v: dict) -> dict:
        import re

        bad = [k for k in v if not re.match(NAME, k)]
        if bad:
            raise ValueError(f"variant names must match {NAME}: {bad}")
        return v


def deep_merge(base: dict, override: dict) -> dict:
    """`override` on top of `base`, recursively for mappings; lists and scalars replace."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_files(paths: list[Path], base: dict | None = None) -> dict:
    """YAML config files merged in order over `base`, as Snakemake merges `--configfile` over its default."""
    merged = base or {}
    for path in paths:
        merged = deep_merge(merged, yaml.safe_load(Path(path).read_text()) or {})
    return merged


def point_name(variant: str, seed: int) -> str:
    return f"{variant}-s{seed}"


def expand_sweep(spec: SweepSpec, base_config: dict, spec_dir: Path | None = None) -> dict[str, ExperimentConfig]:
    """Output folder -> validated config, for every (variant, seed) in file order."""
    if spec.base is not None:
        files = [spec.base] if isinstance(spec.base, str) else spec.base
        base_config = merge_files([(spec_dir or Path(".")) / f for f in files])
    base_config = deep_merge(base_config, spec.overrides)
    results_dir = f"{base_config.get('results_dir', 'results')}/{spec.sweep}"
    points = {}
    for variant, overrides in spec.variants.items():
        for seed in spec.seeds:
            raw = deep_merge(base_config, overrides)
            raw.update(experiment=point_name(variant, seed), seed=seed, results_dir=results_dir,
                       sweep={"name": spec.sweep, "variant": variant, "seed": seed})
            try:
                cfg = ExperimentConfig.model_validate(raw)
            except ValueError as e:
                raise ValueError(f"sweep {spec.sweep!r}, variant {variant!r}: invalid config: {e}") from e
            points[str(cfg.out_dir())] = cfg
    return points


def _sweep_identity(spec: SweepSpec, path: Path) -> tuple:
    """What makes two sweep files the same sweep: the validated spec and the content of its base files
    (a relative `base` resolves beside each file, so identical specs can still start from different configs)."""
    files = [] if spec.base is None else [spec.base] if isinstance(spec.base, str) else spec.base
    bases = []
    for f in files:
        try:
            bases.append(yaml.safe_load((path.parent / f).read_text()))
        except OSError:
            bases.append(("missing", str(f)))
    return spec.model_dump(mode="json"), bases


def load_sweeps(dirs: list[Path]) -> dict[str, tuple[SweepSpec, Path]]:
    """Every sweep file (YAML with a top-level `sweep:` key) in `dirs`; experiment files are skipped.

    The same sweep found twice (the workflow's config/ copied into the working folder) is one sweep,
    compared by content, not path; the first directory's file is kept. Two different files with the
    same sweep name are an error that names the file to rename.
    """
    found: dict[str, tuple[SweepSpec, Path]] = {}
    identities: dict[str, tuple] = {}
    for d in dirs:
        for path in sorted(Path(d).glob("*.yaml")) if Path(d).is_dir() else []:
            raw = yaml.safe_load(path.read_text()) or {}
            if not isinstance(raw, dict) or "sweep" not in raw:
                continue
            try:
                spec = SweepSpec.model_validate(raw)
            except ValueError as e:
                raise ValueError(f"{path}: invalid sweep: {e}") from e
            identity = _sweep_identity(spec, path)
            other = found.get(spec.sweep)
            if other is not None:
                if other[1].resolve() == path.resolve() or identities[spec.sweep] == identity:
                    continue  # the same sweep seen twice
                raise ValueError(f"sweep {spec.sweep!r} is defined by two different files: {other[1]} and {path}; "
                                 f"rename the `sweep:` in {path} (or make the two files identical)")
            found[spec.sweep] = (spec, path)
            identities[spec.sweep] = identity
    return found


__all__ = ["SweepSpec", "SweepMember", "deep_merge", "expand_sweep", "load_sweeps", "point_name"]
