"""Resuming a trainer from its checkpoints (SFT and GRPO alike)."""

from __future__ import annotations

from pathlib import Path


def latest_checkpoint(root: Path) -> Path | None:
    found = sorted(root.glob("checkpoint-*"), key=checkpoint_step) if root.is_dir() else []
    return found[-1] if found else None


def checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def train_or_finish(trainer, checkpoints: Path, max_steps: int | None, tag: str, log=print):
    """`trainer.train()`, resumed from the latest checkpoint; a run killed after its last step (before its
    metrics.json) takes that checkpoint as it is, since transformers' resume would train one step past
    max_steps (seen for SFT and GRPO). Returns train()'s result, or None when nothing was trained."""
    latest = latest_checkpoint(checkpoints)
    if latest is not None and max_steps and checkpoint_step(latest) >= max_steps:
        from transformers.trainer_callback import TrainerState

        trainer._load_from_checkpoint(str(latest))
        trainer.state = TrainerState.load_from_json(str(latest / "trainer_state.json"))
        log(f"[{tag}] {latest.name} already reached max_steps={max_steps}: not training again")
        return None
    return trainer.train(resume_from_checkpoint=str(latest) if latest else None)
