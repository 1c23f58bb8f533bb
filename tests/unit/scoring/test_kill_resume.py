"""``reviewops score`` killed for real: SIGKILL to its process group (the driver and the local Ray it started).

The command runs as a subprocess on a batch of many partitions with the tiny classifier; as soon
as its first part file appears the whole group is killed, a temporary file is left where a write
killed before its rename would leave one, and a rerun finishes the batch: the dataset equals an
uninterrupted run's row for row (``scored_at`` aside), and the leftover is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from reviewops.config import Settings
from reviewops.data.generate import generate_reviews
from reviewops.scoring.dataset import batch_dir, part_path, read_scored
from reviewops.scoring.predictor import PROBA_COLUMNS

ROWS, CHUNK, BATCH = 4000, 200, "stream"  # 20 partitions: the kill lands while most are still to score
REVIEWOPS = str(Path(sys.executable).with_name("reviewops"))

pytestmark = pytest.mark.slow  # three CLI runs, each starting a local Ray and an actor pool


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    from reviewops.testing.tiny import build_tiny_encoder

    root = tmp_path_factory.mktemp("kill")
    generate_reviews(ROWS, seed=11).to_csv(root / f"{BATCH}.csv", index=False)
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(Settings(paths={"models_dir": str(root / "models")}).model_dump(mode="json")))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return {"root": root, "params": params, "model": build_tiny_encoder(root / "enc"), "env": env}


def _command(setup: dict, out: Path) -> list[str]:
    return [
        REVIEWOPS,
        "--params",
        str(setup["params"]),
        "--set",
        f"score.chunk_rows={CHUNK}",
        "--set",
        "score.batch_size=16",  # small blocks: many actor calls, a wide window for the kill
        "score",
        str(setup["root"] / f"{BATCH}.csv"),
        "--out",
        str(out),
        "--summaries",
        "none",
        "--sentiment-model",
        str(setup["model"]),
        "--no-track",
        "--json",
    ]


def _score(setup: dict, out: Path) -> dict:
    proc = subprocess.run(
        _command(setup, out), capture_output=True, text=True, timeout=600, cwd=setup["root"], env=setup["env"]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def uninterrupted(setup) -> tuple[dict, pd.DataFrame]:
    out = setup["root"] / "whole"
    return _score(setup, out), read_scored(out, BATCH)


def _kill_at_first_part(setup: dict, out: Path) -> int:
    """Start the command in its own process group, SIGKILL the group once a part exists; returns its pid."""
    with (setup["root"] / "killed.err").open("w") as err:
        proc = subprocess.Popen(
            _command(setup, out),
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=setup["root"],
            env=setup["env"],
            start_new_session=True,  # its own process group: the driver and every Ray process it starts
        )
    deadline = time.monotonic() + 600
    while not any(batch_dir(out, BATCH).glob("part-*.parquet")):
        assert proc.poll() is None, (setup["root"] / "killed.err").read_text()[-3000:]
        assert time.monotonic() < deadline, "no part written in 600 s"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    for _ in range(300):  # the group is gone: nothing of the killed run (GCS, raylet, actors) lives on
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"processes of the killed run's group {proc.pid} are still alive after 30 s")
    return proc.pid


def _without_time(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["scored_at"]).reset_index(drop=True)


def test_sigkilled_run_resumes_to_the_uninterrupted_output(setup, uninterrupted):
    whole, expected = uninterrupted
    total = whole["partitions"]["total"]
    assert total == ROWS // CHUNK and whole["partitions"]["written"] == list(range(total))
    out = setup["root"] / "killed"
    pid = _kill_at_first_part(setup, out)
    done = sorted(int(p.stem.split("-")[1]) for p in batch_dir(out, BATCH).glob("part-*.parquet"))
    assert 1 <= len(done) < total, f"the kill came too late to test a resume: {done}"
    # a write the kill stopped between its temporary file and the rename: half a Parquet file, never renamed
    todo = min(set(range(total)) - set(done))
    stale = batch_dir(out, BATCH) / f".{part_path(out, BATCH, todo).name}.{pid}.tmp"
    half = part_path(out, BATCH, done[0]).read_bytes()
    stale.write_bytes(half[: len(half) // 2])

    resumed = _score(setup, out)

    assert resumed["partitions"]["skipped"] == done
    assert resumed["partitions"]["written"] == sorted(set(range(total)) - set(done))
    assert resumed["partitions"]["resumed"] is True
    assert resumed["counts"] == whole["counts"]
    assert not stale.exists() and not list(batch_dir(out, BATCH).glob(".*.tmp"))
    assert not (out / "_staging").exists()
    final, expected = _without_time(read_scored(out, BATCH)), _without_time(expected)
    assert len(final) == whole["counts"]["scored"] > 0
    np.testing.assert_allclose(final[PROBA_COLUMNS].to_numpy(), expected[PROBA_COLUMNS].to_numpy(), atol=1e-6)
    same = [c for c in final.columns if c not in PROBA_COLUMNS]
    pd.testing.assert_frame_equal(final[same], expected[same])
    assert whole["counts"]["quarantined"] > 0 and whole["counts"]["deduplicated"] > 0
    for kind in ("quarantine", "duplicates"):  # the side outputs too, partition by partition
        assert _side_rows(out, kind) == _side_rows(setup["root"] / "whole", kind)


def _side_rows(out: Path, kind: str) -> list[tuple[str, int]]:
    return sorted((p.name, len(pd.read_parquet(p))) for p in (out / f"_{kind}").rglob("part-*.parquet"))
