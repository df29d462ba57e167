"""SFT throughput: EnvFactory's `run_sft` vs a plain TRL script on the same tokenized rows (target >= 0.95x).

Both train the same model for the same steps on the same pre-tokenized examples (the plain script receives the
dataset `build_dataset` produced, so only the wrapper's own work differs: data view, resume check, metrics).
tokens/s = trained tokens / wall time of the whole call (loading, data preparation and training included).

    python benchmarks/sft_overhead.py --data results/default/data/sft.parquet --steps 3 [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def plain_trl(model_path: str, dataset, steps: int, out: Path) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    args = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=1, gradient_accumulation_steps=1,
                     learning_rate=1e-4, report_to=[], use_cpu=True, bf16=False, gradient_checkpointing=False,
                     save_strategy="no", logging_steps=1, max_length=1024, seed=0, dataloader_num_workers=0)
    SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tok).train()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="results/default/data/sft.parquet")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from transformers import AutoTokenizer

    from envfactory.default_model import resolve_model_path
    from envfactory.train.rows import TrainView
    from envfactory.train.sft import SFTSettings, build_dataset, run_sft

    path = resolve_model_path("smollm2-135m")
    settings = SFTSettings(max_steps=args.steps, gradient_accumulation_steps=1, max_examples=args.steps,
                           max_length=1024, logging_steps=1)
    view = TrainView()
    dataset, _ = build_dataset(Path(args.data), AutoTokenizer.from_pretrained(path), settings, view)
    tokens = sum(len(x) for x in dataset["input_ids"][: args.steps])
    with tempfile.TemporaryDirectory() as d:
        plain_s = plain_trl(path, dataset, args.steps, Path(d) / "plain")
        times = {}
        # the wrapper alone (no intermediate checkpoint, like the plain script), then with its default
        # resumability checkpoint (model + optimizer state written half-way)
        for label, save_steps in (("no_checkpoint", 0), ("default_checkpointing", None)):
            t0 = time.perf_counter()
            run_sft(settings.model_copy(update={"save_steps": save_steps}), "smollm2-135m", view, Path(args.data),
                    Path(d) / label, log=lambda _: None)
            times[label] = time.perf_counter() - t0
    out = {"steps": args.steps, "tokens": tokens, "plain_trl_tokens_per_s": round(tokens / plain_s, 2),
           "envfactory_tokens_per_s": round(tokens / times["no_checkpoint"], 2),
           "ratio": round(plain_s / times["no_checkpoint"], 3),
           "ratio_with_checkpointing": round(plain_s / times["default_checkpointing"], 3)}
    print(json.dumps(out) if args.json else "\n".join(f"{k:26s} {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
