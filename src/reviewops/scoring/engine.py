"""The Ray side of bulk scoring: the session, and one Ray Data pipeline over every partition of a batch.

Design (measured on the 2-core box with the tiny models): starting the actor pool costs ~10 s
(each actor imports torch and loads both models) while a 2,000-row batch then takes under a
second, so the pool is started ONCE per run. The partitions' cleaned rows are staged as Parquet
files first (:func:`stage_partition`: the summary sample needs the whole batch before any row is
scored), each partition cut into files of :func:`block_rows` rows, then a single Dataset reads
them all, one file per block::

    read_parquet(staged files, one block each) -> map_batches(ReviewPredictor, actor pool)
      -> rows back on the driver, per partition

On a Ray this process started (one node: every actor sees the staged files) the actors read the
files themselves (``from_items(paths) -> map_batches(StagedFilePredictor)``): no read tasks, no
worker kept for them (~250 MB RSS); that Ray also drops what one run never uses
(:func:`start_local_ray`). A joined cluster keeps the read tasks.

Blocks of a fixed size keep memory flat in rows: one block feeds one actor, so small blocks give
every actor work without a ``repartition`` step (whose worker grew from 367 to 949 MB between
100k and 1M rows), and the blocks in flight (bounded by :data:`OBJECT_STORE_LIMIT`) are the same
few MB at any input size. Rows carry their partition and row number (``_part``, ``_row``); the
driver collects a partition until all its rows are back (Ray may finish blocks out of order, but
blocks are read in partition order, so only a partition or two is pending at a time), sorts them
and hands them to ``write``, which writes ``part-<i>.parquet`` atomically. Ray's own
``write_parquet`` is not used: it names files itself and can leave half a partition behind, which
would break resume.

Actors ask for ``score.actor_cpus`` (0.5 by default): actors that claim every CPU leave none to
the read tasks, and the pipeline waits forever ("backpressured: ResourceBudget"). The read tasks
are pinned to the driver's node, where the staged files are (label ``ray.io/node-id``); the
actors run anywhere. On a multi-node cluster, put ``--out`` on a filesystem every node sees.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import socket
import warnings
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.scoring.dataset import write_parquet_atomic
from reviewops.scoring.models import ScoringModels
from reviewops.scoring.predictor import PATH, ReviewPredictor, StagedFilePredictor, SummaryPlan
from reviewops.scoring.ray_setup import init_local_ray

PART, ROW = "_part", "_row"
# What the actors read: the cleaned columns the output keeps, typed so every staged file agrees.
STAGING_SCHEMA = pa.schema(
    [
        ("review_id", pa.string()),
        ("product_id", pa.string()),
        ("batch", pa.string()),
        ("timestamp", pa.string()),
        ("rating", pa.float64()),
        ("text", pa.string()),
        ("language", pa.string()),
        (PART, pa.int64()),
        (ROW, pa.int64()),
    ]
)
Write = Callable[[int, pd.DataFrame], None]
BLOCK_BATCHES = 8  # map_batches calls per staged file (= Ray block): small enough to spread over the actors
OBJECT_STORE_LIMIT = 256 * 1024**2  # bytes of blocks the Dataset may hold in the object store at once
# A local Ray for one run: no workers started ahead of demand (the raylet starts one per CPU when
# the driver connects; the pool's actors and Ray Data's own actors start their workers anyway).
LOCAL_SYSTEM_CONFIG = {"prestart_worker_first_driver": False, "enable_worker_prestart": False}
UNUSED_HEAD_PROCESSES = ("kill_monitor", "kill_log_monitor", "kill_dashboard")


def block_rows(settings: Settings) -> int:
    """Rows per staged file, hence per Ray block: :data:`BLOCK_BATCHES` ``score.batch_size`` batches."""
    return settings.score.batch_size * BLOCK_BATCHES


def ray_address(settings: Settings, override: str | None = None) -> str | None:
    """The cluster to join: ``--ray-address``, else ``score.ray_address``, else ``$RAY_ADDRESS``; None = local.

    ``local`` forces a local Ray even when ``$RAY_ADDRESS`` is set.
    """
    address = (override or settings.score.ray_address or os.environ.get("RAY_ADDRESS", "")).strip()
    return None if address in ("", "local") else address


def probe_ray(settings: Settings, address: str | None = None, timeout_s: float = 5.0) -> None:
    """Fail fast when the cluster to join does not accept connections (Ray itself retries for minutes).

    ``auto`` and a local Ray are not probed (``auto`` fails fast on its own).

    Raises:
        ReviewOpsError: nothing listens at the address.
    """
    target = ray_address(settings, address)
    if target is None or target == "auto":
        return
    host, _, port = target.split("://", 1)[-1].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise ReviewOpsError(
            f"cannot reach the Ray cluster at {target!r} ({exc}); start one with `ray start --head`, "
            "or leave --ray-address and $RAY_ADDRESS empty for a local Ray"
        ) from None


def _configure_ray_data() -> None:
    """No Ray Data progress bars or per-execution log lines (the CLI shows its own progress); bounded memory.

    The object store budget caps the blocks read ahead of the actors. ``read_parquet``'s V2
    datasource is off: it starts up to 32 ``FooterReader`` actors (2.8 GB at 300k rows here) and
    bin-packs files into 128 MiB blocks; V1 reads each staged file as one block with plain tasks.
    """
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    limits = ctx.execution_options.resource_limits
    ctx.execution_options.resource_limits = limits.copy(object_store_memory=OBJECT_STORE_LIMIT)
    ctx.use_datasource_v2 = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"
    # A batch smaller than two blocks feeds one actor of the pool: expected, not worth a warning.
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
    warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated", DeprecationWarning)  # max_restarts has no name


@contextlib.contextmanager
def ray_session(settings: Settings, *, address: str | None = None, log: Callable[[str], None] | None = None):
    """Join a Ray cluster or start a local one for the block; yields a description of it.

    A Ray already initialized in this process (a test fixture, a notebook) is used as it is and
    left running; a local one started here (:func:`start_local_ray`) is shut down at the end.

    Raises:
        ReviewOpsError: the cluster at ``address`` cannot be reached, or cannot start one actor.
    """
    import ray

    say = log or (lambda _: None)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    target = ray_address(settings, address)
    started = False
    if not ray.is_initialized():
        if target:
            try:
                ray.init(address=target, log_to_driver=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ReviewOpsError(
                    f"cannot join the Ray cluster at {target!r} ({first}); a cluster from `ray start --head` "
                    "uses token authentication: set RAY_AUTH_MODE=token (token in ~/.ray/auth_token or "
                    "$RAY_AUTH_TOKEN), or leave --ray-address and $RAY_ADDRESS empty for a local Ray"
                ) from None
        else:
            start_local_ray(settings)
        started = True
    _configure_ray_data()
    try:
        resources = ray.cluster_resources()
        check_actor_resources(settings, resources)
        info = {"address": target or "local", "cpus": resources.get("CPU"), "initialized_here": started}
        say(f"Ray: {info['address']} ({info['cpus']:g} CPUs)")
        yield info
    finally:
        if started:
            ray.shutdown()


def start_local_ray(settings: Settings) -> None:
    """``ray.init`` of a new local Ray for one run, without the processes such a run never uses.

    ``address="local"``: a new instance, even when ``ray start`` left one running on this machine.
    ``score.ray_num_cpus`` CPUs (None = all), no dashboard, no log streaming, no usage stats, no
    prestarted workers (:data:`LOCAL_SYSTEM_CONFIG`); then :func:`_stop_unused_head_processes`.
    """
    init_local_ray(
        num_cpus=settings.score.ray_num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        _system_config=dict(LOCAL_SYSTEM_CONFIG),
    )
    _stop_unused_head_processes()


def _stop_unused_head_processes() -> None:
    """Stop what ``ray.init`` always starts (``ray start`` need not) and one local run never uses (~270 MB RSS).

    The autoscaler monitor (a local cluster never scales), the log monitor (``log_to_driver=False``)
    and the dashboard head (only usage stats without the dashboard: off). The raylet exits when one
    of its agents dies: they stay. Best effort: a Ray without these methods keeps the processes.
    """
    node = _head_node_started_here()
    for stop in UNUSED_HEAD_PROCESSES:
        try:
            getattr(node, stop)(check_alive=False)
        except (AttributeError, TypeError, OSError) as exc:
            logging.getLogger(__name__).debug("local Ray: %s failed (%s)", stop, exc)


def _head_node_started_here() -> Any:
    """The Ray head node this process started (``ray.init`` without an address: one node, this disk), else None."""
    import ray

    node = getattr(ray._private.worker, "_global_node", None)
    return node if getattr(node, "head", False) else None


def check_actor_resources(settings: Settings, resources: Mapping[str, float]) -> None:
    """Refuse actors the cluster cannot start even once: Ray would wait forever (a pool that fits partly runs).

    Raises:
        ReviewOpsError: ``score.actor_gpus`` (or ``actor_cpus``) asks for more than the whole cluster has.
    """
    cfg = settings.score
    for key, resource, wanted, fix in (
        ("actor_gpus", "GPU", cfg.actor_gpus, "set score.actor_gpus=0 for CPU actors, or use a cluster with GPU nodes"),
        ("actor_cpus", "CPU", cfg.actor_cpus, "lower score.actor_cpus"),
    ):
        available = float(resources.get(resource, 0.0))
        if wanted > 0 and available < wanted:
            raise ReviewOpsError(
                f"score.{key}={wanted:g} but the Ray cluster has {available:g} {resource}s, so no actor could "
                f"ever start; {fix} (--set score.{key}=...)"
            )


def stage_partition(
    clean: pd.DataFrame, path: Path, *, index: int, batch: str, rows_per_file: int | None = None
) -> list[Path]:
    """Write a partition's cleaned rows for the actor pool (:data:`STAGING_SCHEMA`, numbered).

    ``rows_per_file`` rows go to each file (None: one file at ``path``), named
    ``<stem>-<k:04d>.parquet`` beside ``path``; returns the files in row order.
    """
    frame = pd.DataFrame(
        {
            "review_id": clean["review_id"].astype("string"),
            "product_id": clean.get("product_id", pd.Series(None, index=clean.index, dtype="string")),
            "batch": batch,
            "timestamp": clean.get("timestamp", pd.Series(None, index=clean.index, dtype="string")),
            "rating": pd.to_numeric(clean.get("rating", pd.Series(None, index=clean.index)), errors="coerce"),
            "text": clean["text"],
            "language": clean.get("language", pd.Series(None, index=clean.index, dtype="string")),
            PART: index,
            ROW: range(len(clean)),
        }
    )
    table = pa.Table.from_pandas(frame, preserve_index=False).cast(STAGING_SCHEMA)
    if rows_per_file is None:
        return [write_parquet_atomic(table, path)]
    starts = range(0, max(len(table), 1), rows_per_file)
    return [
        write_parquet_atomic(table.slice(start, rows_per_file), path.with_name(f"{path.stem}-{k:04d}.parquet"))
        for k, start in enumerate(starts)
    ]


def _driver_node() -> dict[str, str]:
    """A label selector for this (the driver's) node, where the staged files are (every node has this label)."""
    import ray

    return {"ray.io/node-id": ray.get_runtime_context().get_node_id()}


def scored_batches(
    files: list[Path],
    *,
    settings: Settings,
    models: ScoringModels,
    plan: SummaryPlan,
    read_on_actors: bool = False,
) -> Generator[pd.DataFrame, None, None]:
    """The Ray Data pipeline over the staged files: predictor output batches, in no particular order.

    ``read_on_actors``: the dataset is the files' paths and each actor reads its files itself
    (:class:`StagedFilePredictor`), for a Ray whose every worker sees the driver's disk (one this
    process started): no read tasks, hence no worker kept for them. Otherwise read tasks pinned
    to the driver's node read them and Ray moves the blocks to the actors, wherever they run.
    """
    import ray.data

    cfg = settings.score
    kwargs = {"settings": settings, "models": models, "use_gpu": cfg.actor_gpus > 0, "plan": plan, "keep": (PART, ROW)}
    dataset: ray.data.Dataset
    if read_on_actors:  # one block and one call per staged file: the same work per actor call as a read block
        dataset = ray.data.from_items([{PATH: str(f)} for f in files], override_num_blocks=len(files))
        predictor: type = StagedFilePredictor
        batch_size = 1
    else:  # one read task and one block per staged file
        dataset = ray.data.read_parquet(
            [str(f) for f in files],
            partitioning=None,
            label_selector=_driver_node(),
            override_num_blocks=len(files),
            # A read fits beside the actors on the driver's node however few CPUs it has: with the
            # default 1 CPU, a 1-CPU node holding half an actor never starts one (the run waits forever).
            num_cpus=0,
            concurrency=1,  # one read worker
        )
        predictor, batch_size = ReviewPredictor, cfg.batch_size
    scored = dataset.map_batches(
        predictor,
        fn_constructor_kwargs=kwargs,
        compute=ray.data.ActorPoolStrategy(size=cfg.actors),
        num_cpus=cfg.actor_cpus,
        num_gpus=cfg.actor_gpus,
        batch_size=batch_size,
        batch_format="pandas",
        max_restarts=0,  # a dead actor fails the run (a rerun resumes): Ray warns its restarts can fail (ray#53727)
        scheduling_strategy="SPREAD",  # the pool's actors over the cluster's nodes, not packed on the first
    )
    yield from scored.iter_batches(batch_format="pandas", batch_size=None)


def release_memory() -> None:
    """Hand the driver's freed memory back to the system: Arrow's pool, then glibc's heap (where there is one).

    Both keep freed pages: after the input pass of 100k rows the driver held ~400 MB, ~220 MB after
    this (measured); after each partition written it keeps the driver flat.
    """
    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def collect_partitions(batches: Iterable[pd.DataFrame], expected: Mapping[int, int], write: Write) -> int:
    """Regroup output batches by partition; ``write(index, rows)`` once all of a partition's rows are back.

    Rows are handed over in their staged order, without the ``_part`` / ``_row`` columns.

    Returns:
        The number of rows written.

    Raises:
        RuntimeError: a partition got more rows than it was staged with, or some never came back.
    """
    pending: dict[int, list[pd.DataFrame]] = defaultdict(list)
    got: dict[int, int] = defaultdict(int)
    written: set[int] = set()
    total = 0
    for frame in batches:
        for part, rows in frame.groupby(PART, sort=False):
            index = int(part)
            pending[index].append(rows)
            got[index] += len(rows)
            if got[index] > expected[index]:
                raise RuntimeError(f"partition {index}: {got[index]} rows came back, {expected[index]} were staged")
            if got[index] == expected[index]:
                with warnings.catch_warnings():  # all-None summary columns: object dtype either way
                    warnings.simplefilter("ignore", FutureWarning)
                    done = pd.concat(pending.pop(index), ignore_index=True).sort_values(ROW, kind="stable")
                write(index, done.drop(columns=[PART, ROW]).reset_index(drop=True))
                written.add(index)
                total += len(done)
                del done
                release_memory()
    missing = sorted(set(expected) - written)
    if missing:
        raise RuntimeError(f"partitions {missing} did not come back whole from the actor pool")
    return total


def score_staged(
    files: Mapping[int, list[Path]],
    expected: Mapping[int, int],
    *,
    settings: Settings,
    models: ScoringModels,
    plan: SummaryPlan,
    write: Write,
) -> int:
    """Score the staged partitions ``{index: files}`` with one actor pool; returns the rows written."""
    if not files:
        return 0
    staged = [f for index in sorted(files) for f in files[index]]
    release_memory()  # what the input pass freed, before the actors start
    on_actors = _head_node_started_here() is not None  # a Ray this process started: the actors see the files
    batches = scored_batches(staged, settings=settings, models=models, plan=plan, read_on_actors=on_actors)
    try:
        return collect_partitions(batches, {i: expected[i] for i in files}, write)
    finally:
        batches.close()  # a failed write stops the pipeline and frees the actor pool now, not at exit
