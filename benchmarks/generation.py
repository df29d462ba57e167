"""Generation throughput on the held-out evaluation workload: the engine vs today's sequential path.

Both runs evaluate the same held-out tasks (the same rows, prompts, tool subsets and output budget as the
`eval_envs` rule) with greedy decoding, in one process, one after the other:
- baseline: engine `transformers`, one episode at a time (`model.generate` per request, the path before);
- engine:   the configured engine (default llama_cpp) with `--concurrency` episodes in flight.
Printed per run: episodes/min (the ratio that counts: prefill included), generated tokens/s, wall time,
successes; and how many episodes gave the same transcript in both runs (greedy decoding should agree).

    envfactory bench generation [--json] [--tasks 16] [--engine llama_cpp] [--concurrency 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def run(cfg, rows, packages, tokenizer, model: str, engine: str, workers: int, concurrency: int) -> dict:
    from envfactory.agent.loop import llm_policy
    from envfactory.generation.serving import local_provider
    from envfactory.llm import ChatRequest, LLMClient
    from envfactory.train.eval_envs import evaluate

    h = cfg.train.heldout
    gen = cfg.generation.model_copy(update={"engine": engine, "workers": workers, "concurrency": concurrency})
    client = LLMClient(local_provider(gen, model, h.max_new_tokens), cache_mode="off")
    transcripts: dict[str, list] = {}

    def keep(row, ep):
        transcripts[row["chain_id"]] = [(m.content, [(c.name, c.arguments) for c in m.tool_calls])
                                        for m in ep.messages if m.role == "assistant"]

    policy = llm_policy(client, max_tokens=h.max_new_tokens)
    # load (and for llama_cpp, export) outside the timed region: both runs are timed warm
    client.chat(ChatRequest(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=1))
    client.totals.completion_tokens = client.totals.prompt_tokens = 0
    t0 = time.perf_counter()
    report = evaluate(policy, rows, packages, max_turns=h.max_turns, max_tool_chars=None,
                      max_tools=cfg.train.view.max_tools, seed=cfg.train.rl.seed,
                      shorten=lambda text: cfg.train.view.shorten(text, tokenizer), concurrency=concurrency,
                      on_episode=keep)
    wall = time.perf_counter() - t0
    return {"engine": engine, "workers": workers, "concurrency": concurrency, "episodes": report.episodes,
            "successes": round(report.success_rate * report.episodes), "wall_s": round(wall, 1),
            "episodes_per_min": round(report.episodes / wall * 60, 2),
            "generated_tokens": client.totals.completion_tokens, "prompt_tokens": client.totals.prompt_tokens,
            "generated_tokens_per_s": round(client.totals.completion_tokens / wall, 1),
            "_transcripts": transcripts}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="results/default", help="an experiment folder with data/rl.parquet")
    ap.add_argument("--model", default="smollm2-135m", help="a model name or a stage's model folder")
    ap.add_argument("--tasks", type=int, default=16)
    ap.add_argument("--engine", default="llama_cpp")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from envfactory.config import load_config
    from envfactory.env.manifest import admitted_packages
    from envfactory.train.rl import task_rows
    from envfactory.train.stages import _tokenizer

    results = Path(args.results)
    if not (results / "data" / "rl.parquet").is_file():
        raise SystemExit(f"error: {results}/data/rl.parquet missing; run: snakemake --cores all "
                         f"{results}/data/rl.parquet")
    cfg = load_config(results / "config.json")
    rows = task_rows(results / "data" / "rl.parquet", "heldout", args.tasks)
    packages = admitted_packages(results / "envs" / "manifest.json")
    tokenizer = _tokenizer(args.model)
    baseline = run(cfg, rows, packages, tokenizer, args.model, "transformers", 1, 1)
    engine = run(cfg, rows, packages, tokenizer, args.model, args.engine, args.workers, args.concurrency)
    same = sum(baseline["_transcripts"][k] == engine["_transcripts"].get(k) for k in baseline["_transcripts"])
    out = {"workload": {"tasks": len(rows), "max_turns": cfg.train.heldout.max_turns,
                        "max_new_tokens": cfg.train.heldout.max_new_tokens, "model": args.model, "greedy": True},
           "baseline": {k: v for k, v in baseline.items() if not k.startswith("_")},
           "engine": {k: v for k, v in engine.items() if not k.startswith("_")},
           "episodes_per_min_ratio": round(engine["episodes_per_min"] / baseline["episodes_per_min"], 2),
           "same_transcripts": f"{same}/{len(rows)}",
           "same_successes": baseline["successes"] == engine["successes"]}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for name in ("baseline", "engine"):
            r = out[name]
            print(f"{name:9s} {r['engine']:12s} x{r['concurrency']}: {r['episodes']} episodes in {r['wall_s']} s = "
                  f"{r['episodes_per_min']} episodes/min, {r['generated_tokens_per_s']} generated tok/s, "
                  f"{r['successes']} successes")
        print(f"ratio (episodes/min): {out['episodes_per_min_ratio']}x; same transcripts {out['same_transcripts']}; "
              f"same successes: {out['same_successes']}")


if __name__ == "__main__":
    main()
