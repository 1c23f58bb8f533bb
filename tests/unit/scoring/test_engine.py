"""The engine: regrouping batches, staging, the cluster address, the dataset files, GPU checks (no Ray);
the local Ray's processes and both read paths (a real local Ray, slow).
"""

from __future__ import annotations

import contextlib
import stat
import time

import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.scoring import engine
from reviewops.scoring.dataset import (
    SCORED_SCHEMA,
    list_batches,
    part_path,
    read_scored,
    scored_table,
    write_parquet_atomic,
)
from reviewops.scoring.predictor import SCORED_COLUMNS, SummaryPlan


def _rows(part: int, rows: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"x": [f"{part}-{r}" for r in rows], engine.PART: part, engine.ROW: rows})


def test_collect_partitions_regroups_out_of_order_batches():
    # Ray may return blocks out of order and mix partitions in one batch
    batches = [
        pd.concat([_rows(1, [3, 4]), _rows(0, [2])]),
        _rows(1, [0, 1, 2]),
        _rows(0, [1, 0]),
        _rows(2, [0]),
    ]
    written: dict[int, list[str]] = {}

    def write(index: int, rows: pd.DataFrame) -> None:
        assert index not in written, "a partition is written once"
        assert list(rows.columns) == ["x"]
        written[index] = rows["x"].tolist()

    total = engine.collect_partitions(batches, {0: 3, 1: 5, 2: 1}, write)
    assert total == 9
    assert written == {0: ["0-0", "0-1", "0-2"], 1: ["1-0", "1-1", "1-2", "1-3", "1-4"], 2: ["2-0"]}


def test_collect_partitions_refuses_missing_rows():
    with pytest.raises(RuntimeError, match=r"partitions \[1\]"):
        engine.collect_partitions([_rows(0, [0]), _rows(1, [0])], {0: 1, 1: 2}, lambda i, rows: None)


def test_ray_address_order(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    settings = Settings()
    assert engine.ray_address(settings) is None
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert engine.ray_address(settings) == "10.0.0.1:6379"
    assert engine.ray_address(Settings(score={"ray_address": "auto"})) == "auto"
    assert engine.ray_address(settings, "head:6379") == "head:6379"
    assert engine.ray_address(settings, "local") is None


def test_stage_partition_types_every_column(tmp_path):
    clean = pd.DataFrame(
        {
            "review_id": ["a", "b"],
            "product_id": ["p", None],
            "text": ["one", "two"],
            "summary": ["t1", None],
            "rating": [None, None],
            "timestamp": [None, None],
            "language": ["en", "zh"],
            "source_row": [2, 3],
        }
    )
    (path,) = engine.stage_partition(clean, tmp_path / "s" / "part-00004.parquet", index=4, batch="b1")
    assert path == tmp_path / "s" / "part-00004.parquet"
    table = pq.read_table(path)
    assert table.schema.equals(engine.STAGING_SCHEMA)
    frame = table.to_pandas()
    assert frame[engine.PART].tolist() == [4, 4] and frame[engine.ROW].tolist() == [0, 1]
    assert frame["batch"].tolist() == ["b1", "b1"] and frame["rating"].isna().all()


def test_stage_partition_cuts_files_of_block_rows(tmp_path):
    # fixed-size files = fixed-size Ray blocks: no repartition step, every actor gets work
    clean = pd.DataFrame({"review_id": [f"r{i}" for i in range(7)], "text": "t"})
    files = engine.stage_partition(clean, tmp_path / "part-00002.parquet", index=2, batch="b", rows_per_file=3)
    assert [f.name for f in files] == ["part-00002-0000.parquet", "part-00002-0001.parquet", "part-00002-0002.parquet"]
    tables = [pq.read_table(f) for f in files]
    assert [t.num_rows for t in tables] == [3, 3, 1]
    rows = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    assert rows[engine.ROW].tolist() == list(range(7)) and rows["review_id"].tolist() == clean["review_id"].tolist()
    assert engine.block_rows(Settings(score={"batch_size": 16})) == 16 * engine.BLOCK_BATCHES


def _scored(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review_id": [f"r{i}" for i in range(n)],
            "product_id": "p",
            "batch": "b",
            "timestamp": pd.NaT,
            "rating": None,
            "text": "t",
            "language": "en",
            "sentiment": "positive",
            "p_negative": 0.1,
            "p_neutral": 0.2,
            "p_positive": 0.7,
            "summary": None,
            "summary_contradicts": None,
            "sentiment_model": "m",
            "summarizer_model": None,
            "sentiment_version": "3",
            "summarizer_version": None,
            "scored_at": pd.Timestamp("2025-01-01", tz="UTC"),
        }
    )


def test_dataset_files_and_reader(tmp_path):
    assert read_scored(tmp_path).columns.tolist() == SCORED_COLUMNS  # nothing yet: empty, typed
    assert list_batches(tmp_path / "nowhere") == []
    write_parquet_atomic(scored_table(_scored(2)), part_path(tmp_path, "b", 1))
    write_parquet_atomic(scored_table(_scored(3)), part_path(tmp_path, "b", 0))
    write_parquet_atomic(scored_table(_scored(1).assign(batch="c")), part_path(tmp_path, "c", 0))
    assert pq.read_schema(part_path(tmp_path, "b", 0)).equals(SCORED_SCHEMA)
    assert list_batches(tmp_path) == ["b", "c"]
    assert len(read_scored(tmp_path, "b")) == 5 and len(read_scored(tmp_path)) == 6
    assert read_scored(tmp_path, "b")["review_id"].tolist()[:3] == ["r0", "r1", "r2"]  # parts in order
    assert not list(tmp_path.rglob("*.tmp"))


def test_private_parquet_is_owner_only(tmp_path):
    path = write_parquet_atomic(pd.DataFrame({"a": [1]}), tmp_path / "q" / "part-00000.parquet", private=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_actors_the_cluster_cannot_start_are_refused_in_one_line():
    engine.check_actor_resources(Settings(), {"CPU": 2.0})  # CPU actors, half a CPU each
    engine.check_actor_resources(Settings(score={"actor_gpus": 0.5, "actors": 4}), {"CPU": 2.0, "GPU": 1.0})
    with pytest.raises(ReviewOpsError, match=r"^score.actor_gpus=1 but the Ray cluster has 0 GPUs") as caught:
        engine.check_actor_resources(Settings(score={"actor_gpus": 1}), {"CPU": 2.0})
    assert "\n" not in str(caught.value) and "score.actor_gpus=0" in str(caught.value)
    with pytest.raises(ReviewOpsError, match=r"^score.actor_cpus=4 but the Ray cluster has 2 CPUs"):
        engine.check_actor_resources(Settings(score={"actor_cpus": 4}), {"CPU": 2.0})


def _ray_processes() -> list[str]:
    """Program and script (or Ray's process title) of this process's descendants (a local Ray it started)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            found.append(" ".join(proc.cmdline()[:2]))
    return found


@pytest.mark.slow  # starts a local Ray twice and an actor pool
def test_local_ray_reads_on_the_actors_as_read_tasks_would(tmp_path, capfd):
    import ray

    from reviewops.scoring.models import resolve_models
    from reviewops.testing.tiny import build_tiny_encoder

    assert not ray.is_initialized()
    settings = Settings(score={"batch_size": 8, "actors": 2, "ray_num_cpus": 2})
    models = resolve_models(settings, sentiment=build_tiny_encoder(tmp_path / "enc"), summarizer=None, summaries="none")
    clean = pd.DataFrame(
        {"review_id": [f"r{i}" for i in range(150)], "text": [f"text {i} " * (i % 7) for i in range(150)]}
    )
    files = engine.stage_partition(clean, tmp_path / "s" / "part-00000.parquet", index=0, batch="b", rows_per_file=64)
    plan = SummaryPlan("none")
    with engine.ray_session(settings) as info:
        assert info["initialized_here"] and engine._head_node_started_here() is not None
        time.sleep(2)  # what the raylet would prestart when the driver connects has had time to appear
        processes = _ray_processes()
        assert any("raylet" in p for p in processes) and any("gcs_server" in p for p in processes)
        unused = (
            "autoscaler/_private/monitor.py",
            "log_monitor.py",
            "dashboard/dashboard.py",
            "ray::IDLE",
            "default_worker",
        )
        assert not [p for p in processes if any(name in p for name in unused)]
        outputs = [
            pd.concat(
                engine.scored_batches(files, settings=settings, models=models, plan=plan, read_on_actors=on_actors)
            )
            .sort_values(engine.ROW)
            .reset_index(drop=True)
            for on_actors in (True, False)
        ]
    assert not ray.is_initialized()
    # Ray's core worker warns of actor restarts that can fail (constructor arguments in the object store)
    # unless the pool's actors are not restarted (max_restarts=0): the warning must not reach the user.
    assert "core_worker" not in capfd.readouterr().err
    on_actors, read_tasks = (frame.assign(scored_at=pd.Timestamp(0, tz="UTC")) for frame in outputs)
    assert on_actors[engine.ROW].tolist() == list(range(150))
    assert on_actors["review_id"].tolist() == clean["review_id"].tolist()
    assert scored_table(on_actors).equals(scored_table(read_tasks))  # as written: the same part file


@pytest.mark.slow  # starts a local Ray
def test_gpu_actors_on_a_cluster_without_gpus_fail_fast():
    import ray

    refused = pytest.raises(ReviewOpsError, match=r"score.actor_gpus=64 but the Ray cluster has \d+ GPUs")
    with refused, engine.ray_session(Settings(score={"actor_gpus": 64})):
        pytest.fail("the session should not start")
    assert not ray.is_initialized()  # the local Ray started for the run is shut down
