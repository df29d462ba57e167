"""Data of the in-repo lm-eval tasks: read from the jsonl files beside this file (no hub, no network)."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (HERE / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def load_smoke(**_kwargs):
    """capability_smoke: the 20 test items and the 3 few-shot examples, as a DatasetDict."""
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(_rows("capability_smoke.jsonl")),
                                 "fewshot": datasets.Dataset.from_list(_rows("capability_smoke_fewshot.jsonl"))})
