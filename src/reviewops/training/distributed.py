"""Training on several processes (``torchrun``): who this process is, the process group, and agreeing.

``torchrun --nproc_per_node N -m reviewops train`` starts N copies of the training stage; each
reads its place from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).
:func:`init_process_group` joins them (gloo on CPU, NCCL on CUDA) before the first Trainer does,
and the Trainer's accelerate state then reuses that group: every optimizer step averages the
gradients of all ranks (DDP), every evaluation gathers all ranks' predictions.

Only the main process (rank 0) touches MLflow, writes reports and final models and changes
checkpoint folders; the helpers here let the others wait for it (:func:`barrier`), take its
answer (:func:`on_main`) and agree on numbers (:func:`mean_metrics`). In a single process (no
``WORLD_SIZE`` above 1) every helper is a no-op, so the single-process path is unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from reviewops.errors import ReviewOpsError

T = TypeVar("T")

# How long a rank waits in a collective (barrier, broadcast) before giving up: rank 0 logging a
# large model to MLflow keeps the others waiting; the Trainer's own default (ddp_timeout) is the same.
DEFAULT_TIMEOUT_S = 1800


def _env_int(*names: str, default: int) -> int:
    """The first of ``names`` set to an integer in the environment, else ``default``."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value.lstrip("-").isdigit():
            return int(value)
    return default


def world_size() -> int:
    """How many training processes there are (the process group's size, else ``WORLD_SIZE``, else 1)."""
    if _initialized():
        import torch.distributed as dist

        return int(dist.get_world_size())
    return max(1, _env_int("WORLD_SIZE", default=1))


def rank() -> int:
    """This process's global rank (0 when not launched by torchrun)."""
    if _initialized():
        import torch.distributed as dist

        return int(dist.get_rank())
    return _env_int("RANK", default=0)


def local_rank() -> int:
    """This process's rank on its machine: the CUDA device it trains on."""
    return _env_int("LOCAL_RANK", default=0)


def is_distributed() -> bool:
    """Whether this process is one of several (torchrun with more than one process)."""
    return world_size() > 1


def is_main() -> bool:
    """Whether this process is rank 0: the one that tracks, reports, saves and prunes."""
    return rank() == 0


def _initialized() -> bool:
    """Whether a torch.distributed process group exists (torch is imported only when asked)."""
    if "torch" not in sys.modules:
        return False
    import torch.distributed as dist

    return bool(dist.is_available() and dist.is_initialized())


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run: ``backend`` is ``"none"`` in a single process."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    created: bool  # whether :func:`init_process_group` created the group (and so destroys it)

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0


def init_process_group(timeout_s: int = DEFAULT_TIMEOUT_S) -> DistInfo:
    """Join the other training processes when launched by torchrun (no-op in a single process).

    The backend is NCCL when CUDA is available (each process on the GPU ``LOCAL_RANK``), else
    gloo. A group that already exists (an outer launcher made it) is reused and left alone.

    Raises:
        ReviewOpsError: ``WORLD_SIZE`` says several processes but the rendezvous variables
            (``MASTER_ADDR``/``MASTER_PORT``) are missing, i.e. not started by torchrun.
    """
    size = _env_int("WORLD_SIZE", default=1)
    if size <= 1 and not _initialized():
        return DistInfo(rank=0, world_size=1, local_rank=0, backend="none", created=False)
    import torch
    import torch.distributed as dist

    created = False
    if not dist.is_initialized():
        missing = [v for v in ("MASTER_ADDR", "MASTER_PORT", "RANK") if not os.environ.get(v)]
        if missing:
            raise ReviewOpsError(
                f"WORLD_SIZE={size} but {', '.join(missing)} not set: start multi-process training with "
                "`torchrun --nproc_per_node N -m reviewops train ...`"
            )
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
        created = True
    return DistInfo(
        rank=int(dist.get_rank()),
        world_size=int(dist.get_world_size()),
        local_rank=local_rank(),
        backend=str(dist.get_backend()),
        created=created,
    )


def destroy_process_group(info: DistInfo) -> None:
    """Leave the process group :func:`init_process_group` created (after a last barrier)."""
    if not info.created or not _initialized():
        return
    import torch.distributed as dist

    barrier()
    dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here (no-op in a single process)."""
    if not _initialized():
        return
    import torch.distributed as dist

    dist.barrier()


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result (which must pickle) to every rank.

    The other ranks wait meanwhile. When ``fn`` raises on rank 0, it re-raises there and the
    other ranks raise a :class:`ReviewOpsError` naming the failure, instead of hanging.
    """
    if not _initialized():
        return fn()
    import torch.distributed as dist

    box: list[Any] = [None]
    error: BaseException | None = None
    if dist.get_rank() == 0:
        try:
            box[0] = ("ok", fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others are told
            error = exc
            box[0] = ("error", f"{type(exc).__name__}: {exc}")
    dist.broadcast_object_list(box, src=0)
    if error is not None:
        raise error
    status, value = box[0]
    if status != "ok":
        raise ReviewOpsError(f"rank 0 failed: {value}")
    return value


def mean_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The mean of each metric over all ranks (every rank gets the same dict).

    A key missing on some rank is averaged over the ranks that have it. Evaluation metrics
    come from predictions the Trainer already gathered from every rank, so their mean is the
    value itself; the training loss differs per rank (each saw its own shard) and is averaged.
    """
    if not _initialized():
        return dict(metrics)
    import torch.distributed as dist

    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, {k: float(v) for k, v in metrics.items()})
    keys = list(dict.fromkeys(k for part in gathered for k in part))
    return {k: sum(p[k] for p in gathered if k in p) / sum(1 for p in gathered if k in p) for k in keys}


def trainer_kwargs() -> dict[str, Any]:
    """``TrainingArguments`` keywords for the process group in use: the DDP backend (none alone)."""
    if not _initialized():
        return {}
    import torch.distributed as dist

    return {"ddp_backend": str(dist.get_backend())}
