"""The torchrun helpers: rank detection from the environment, and agreeing in a real two-process gloo group."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from reviewops.errors import ReviewOpsError
from reviewops.training import distributed

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_torchrun(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_plain_process_is_rank_zero_of_one(no_torchrun: pytest.MonkeyPatch) -> None:
    assert (distributed.rank(), distributed.world_size(), distributed.local_rank()) == (0, 1, 0)
    assert distributed.is_main() and not distributed.is_distributed()
    info = distributed.init_process_group()
    assert info == distributed.DistInfo(rank=0, world_size=1, local_rank=0, backend="none", created=False)
    # Every helper is a no-op alone: what ran before torchrun support runs the same way.
    assert distributed.on_main(lambda: 41 + 1) == 42
    assert distributed.mean_metrics({"train/loss": 2.5}) == {"train/loss": 2.5}
    assert distributed.trainer_kwargs() == {}
    distributed.barrier()
    distributed.destroy_process_group(info)


def test_torchrun_variables_say_which_rank_this_is(no_torchrun: pytest.MonkeyPatch) -> None:
    no_torchrun.setenv("RANK", "3")
    no_torchrun.setenv("WORLD_SIZE", "4")
    no_torchrun.setenv("LOCAL_RANK", "1")
    assert (distributed.rank(), distributed.world_size(), distributed.local_rank()) == (3, 4, 1)
    assert distributed.is_distributed() and not distributed.is_main()
    no_torchrun.setenv("WORLD_SIZE", "junk")  # unreadable: one process
    assert distributed.world_size() == 1


def test_several_processes_without_a_rendezvous_is_one_clear_error(no_torchrun: pytest.MonkeyPatch) -> None:
    no_torchrun.setenv("WORLD_SIZE", "2")
    with pytest.raises(ReviewOpsError, match=r"MASTER_ADDR, MASTER_PORT, RANK not set: .*torchrun --nproc_per_node"):
        distributed.init_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(rank: int, port: int, out: str) -> None:
    """One rank of a real two-process gloo group: writes what each helper returned."""
    import json
    import os

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    info = distributed.init_process_group(timeout_s=60)
    seen: dict[str, object] = {"info": [info.rank, info.world_size, info.backend, info.created]}
    seen["chosen"] = distributed.on_main(lambda: f"picked by rank {distributed.rank()}")
    seen["mean"] = distributed.mean_metrics({"loss": float(rank + 1), "eval/f1": 0.5, f"only_{rank}": 1.0})
    seen["kwargs"] = distributed.trainer_kwargs()

    def fails() -> None:
        raise RuntimeError("disk full")

    try:
        distributed.on_main(fails)
    except Exception as exc:  # noqa: BLE001 - recorded for the assertion
        seen["error"] = f"{type(exc).__name__}: {exc}"
    distributed.destroy_process_group(info)
    Path(out, f"rank{rank}.json").write_text(json.dumps(seen))


def test_two_gloo_processes_agree_on_rank_zeros_answer_and_mean_metrics(tmp_path: Path) -> None:
    import json

    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [s["info"] for s in seen] == [[0, 2, "gloo", True], [1, 2, "gloo", True]]
    assert [s["chosen"] for s in seen] == ["picked by rank 0", "picked by rank 0"]
    assert seen[0]["mean"] == seen[1]["mean"] == {"loss": 1.5, "eval/f1": 0.5, "only_0": 1.0, "only_1": 1.0}
    assert seen[0]["kwargs"] == {"ddp_backend": "gloo"}
    # A failure on rank 0 reaches every rank instead of leaving the others waiting.
    assert seen[0]["error"] == "RuntimeError: disk full"
    assert seen[1]["error"] == "ReviewOpsError: rank 0 failed: RuntimeError: disk full"
