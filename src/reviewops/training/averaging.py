"""Weight averaging over the end of training (``sentiment.checkpoint: average``).

Stochastic weight averaging in its simplest form (Izmailov et al. 2018, "Averaging Weights Leads
to Wider Optima and Better Generalization"): the trainable weights at every evaluation step from
``sentiment.average_from`` of the run on (a fraction of ``max_steps``; the final step always
counts) are summed, and at the end of training the model gets their mean. The encoders here use
LayerNorm, not BatchNorm, so no statistics need recomputing after the swap.

The running sum survives a resume: at each snapshot it is written (atomically, rank 0) to
``<checkpoints>/weight_average-<step>.pt`` *before* the Trainer saves ``checkpoint-<step>``, so a
complete checkpoint always has its sum; a resumed run reloads the one of the step it resumes at.
Only the two newest sums are kept. Frozen weights (the word embeddings by default) never change,
so only trainable ones are summed: for multilingual-e5-small that is ~21M of its 118M parameters.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from reviewops.errors import ReviewOpsError

logger = logging.getLogger(__name__)

AVERAGE_PREFIX = "weight_average-"
_KEEP = 2


def average_start(max_steps: int, average_from: float) -> int:
    """The first step whose weights join the average (``average_from`` of ``max_steps``, at least 1).

    Raises:
        ReviewOpsError: ``average_from`` outside [0, 1).
    """
    if not 0.0 <= average_from < 1.0:
        raise ReviewOpsError(f"sentiment.average_from must be in [0, 1); got {average_from}")
    return max(1, math.ceil(max_steps * average_from))


def snapshot_steps(max_steps: int, every: int, average_from: float) -> list[int]:
    """The steps whose weights are averaged: multiples of ``every`` from the start on, plus the last step."""
    start = average_start(max_steps, average_from)
    steps = [s for s in range(every, max_steps + 1, every) if s >= start]
    if not steps or steps[-1] != max_steps:
        steps.append(max_steps)
    return steps


def _sum_path(ckpt_dir: Path, step: int) -> Path:
    return ckpt_dir / f"{AVERAGE_PREFIX}{step}.pt"


def weight_averager(ckpt_dir: Path | str, every: int, average_from: float) -> Any:
    """A Trainer callback: sums the trainable weights at :func:`snapshot_steps`, loads their mean at the end."""
    import torch
    from transformers import TrainerCallback

    folder = Path(ckpt_dir)

    class WeightAverager(TrainerCallback):
        def __init__(self) -> None:
            self.total: dict[str, Any] = {}
            self.count = 0
            self.steps: list[int] = []
            self.due: frozenset[int] = frozenset()

        def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            self.total, self.count, self.steps = {}, 0, []
            self.due = frozenset(snapshot_steps(state.max_steps, every, average_from))
            if state.global_step > 0:  # resumed: continue the sum saved with that checkpoint
                saved = _sum_path(folder, state.global_step)
                if saved.is_file():
                    blob = torch.load(saved, map_location="cpu", weights_only=True)
                    self.total, self.count, self.steps = blob["total"], int(blob["count"]), list(blob["steps"])
                elif state.global_step >= average_start(state.max_steps, average_from):
                    logger.warning(
                        "resuming at step %d without %s: the weight average restarts here", state.global_step, saved
                    )

        def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            step = state.global_step
            if step not in self.due or step in self.steps:
                return
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if param.requires_grad:
                        value = param.detach().to("cpu", torch.float32)
                        self.total[name] = self.total[name] + value if name in self.total else value.clone()
            self.count += 1
            self.steps.append(step)
            if state.is_world_process_zero:
                self._save(step)

        def _save(self, step: int) -> None:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{AVERAGE_PREFIX}{step}.pt.tmp"
            torch.save({"total": self.total, "count": self.count, "steps": self.steps}, tmp)
            os.replace(tmp, _sum_path(folder, step))
            old = sorted(folder.glob(f"{AVERAGE_PREFIX}*.pt"), key=lambda p: int(p.stem.split("-")[-1]))
            for path in old[:-_KEEP]:
                path.unlink(missing_ok=True)

        def on_train_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            if not self.count:
                return
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if name in self.total:
                        param.copy_((self.total[name] / self.count).to(param.device, param.dtype))
            logger.info("weights averaged over %d snapshots (steps %s)", self.count, self.steps)

    return WeightAverager()
