"""Bulk scoring on Ray at scale: throughput against a naive per-row pipeline, 1 vs 2 workers, peak memory.

One run measures, side by side (every part skippable with ``--skip-*``, every size settable):

1. throughput, sentiment only (summaries none): ``run_score`` on ``--rows`` generated reviews
   (``write_generated``: base scenario, messy rows and duplicates included) with the default
   sentiment model: ``--sentiment-model``, else ``models/trained/sentiment``, else the pulled
   all-MiniLM-L6-v2 (``models/all-minilm-l6-v2``, or the copy its package ships) with a seeded
   random 3-label head built by training's own loader (the labels mean nothing; the compute per
   review is the real classifier's);
2. summaries/s: ``run_score`` with summaries ``all`` on ``--summary-rows`` generated reviews
   (``--summarizer-model``, else ``models/trained/summarizer``, else the pulled SmolLM2;
   ``--tiny-summarizer``: a tiny random LM);
3. the naive baseline: a ``transformers`` ``pipeline("text-classification")`` on the same
   model, called once per review in this process, with torch's default threads and with one
   (the faster is the baseline; ``--naive-threads N``: N only), on the first ``--naive-rows``
   texts of the first ``--rows`` input; a capped run's rate is extrapolated to the larger
   sizes, and the output says so;
4. scaling: ``score.actors`` 1 vs 2 with ``score.threads_per_actor`` 1 on ``--scaling-rows``;
5. memory: the peak of the summed resident memory (psutil RSS, and PSS, which counts shared
   pages once) of a child process running ``run_score`` and of every process under it (the
   local Ray it starts: GCS, raylet, agents, workers, actors), sampled every ``--sample-s``
   seconds from this process, on ``--memory-rows`` generated reviews written to Parquet in
   chunks (one row group each; no whole frame is ever built) with the tiny random classifier
   standing in at ``sentiment.max_length`` ``--memory-max-length`` (default 32 tokens, so the
   run measures the plumbing, not a model) and summaries none. Each text gets a short letters-only suffix there, so the
   rows stay distinct and reach the model instead of being deduplicated.

Rates. ``run_score`` figure = its ``throughput.rows_per_s``: scored reviews / seconds from
the start of scoring (the actor pool starting, models loading) to the last partition written.
"steady" = the reviews written after the first partition / the time between the first and the
last partition written, so the pool is warm; it needs partitions, hence ``--chunk-rows``
(default: a tenth of the input) for parts 1, 2 and 4, while the memory part keeps
``score.chunk_rows``. Parts 1, 2 and 4 share one local Ray, started once and timed apart; the
memory child starts its own, as ``reviewops score`` does.

Why this module is long: five measurements, their report and the memory sampler belong to one
run (the figures are only comparable side by side), and a benchmark script is read as one file.

    python benchmarks/score_scale.py --json /tmp/score_scale.json    # the defaults: hours on 2 cores (10M rows)
    python benchmarks/score_scale.py --rows 2000 --summary-rows 20 --naive-rows 300 --memory-rows 100000
    python benchmarks/score_scale.py --tiny --rows 300 --summary-rows 8 --naive-rows 20 --memory-rows 2000
    python benchmarks/score_scale.py --rows 10000 --naive-rows 1000 --skip-summaries --skip-memory \
        --set sentiment.runtime=onnx --set sentiment.inference=int8     # the ONNX int8 path vs the same naive

``--set KEY=VALUE`` overrides params for every part (the naive baseline stays a torch fp32
``pipeline``: it is the thing compared against).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"ray_vs_naive": 10.0, "two_vs_one": 1.7, "memory_gb": 2.0}  # issue 13
_WRITTEN = re.compile(r"^partition (\d+): (\d+) rows scored")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
NOTE_EVERY_S = 120.0  # memory part: a progress line this often


def say(line: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    print(line, file=sys.stderr, flush=True)


def _sizes(text: str) -> list[int]:
    """``"10000,100_000"`` -> ``[10000, 100000]``."""
    return [int(s.replace("_", "")) for s in text.split(",") if s.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=_sizes, default=[10_000, 100_000], help="sentiment-only sizes (comma-separated)")
    p.add_argument("--summary-rows", type=int, default=500, help="rows scored with summaries all")
    p.add_argument("--naive-rows", type=int, default=2000, help="cap of the per-row pipeline (0 = no cap)")
    p.add_argument(
        "--naive-threads", type=int, default=0, help="torch threads of the naive run (0 = torch's default, then 1)"
    )
    p.add_argument("--scaling-rows", type=int, help="rows of the 1 vs 2 workers runs (default: the first --rows)")
    p.add_argument("--memory-rows", type=_sizes, default=[1_000_000, 10_000_000], help="memory sizes")
    p.add_argument("--chunk-rows", type=int, default=0, help="partition size of parts 1, 2, 4 (0 = a tenth)")
    p.add_argument("--sentiment-model", help="a model folder, NAME@ALIAS or NAME/VERSION")
    p.add_argument("--summarizer-model", help="a model folder, NAME@ALIAS or NAME/VERSION")
    p.add_argument("--tiny", action="store_true", help="tiny random models for parts 1-4 (smoke test)")
    p.add_argument("--tiny-summarizer", action="store_true", help="a tiny random LM as the summarizer")
    for part in ("throughput", "summaries", "naive", "scaling", "memory"):
        p.add_argument(f"--skip-{part}", action="store_true", help=f"leave out the {part} part")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a params override for every part (repeatable), e.g. sentiment.runtime=onnx sentiment.inference=int8",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--sample-s", type=float, default=0.2, help="memory sampling interval")
    p.add_argument("--workdir", type=Path, help="keep inputs and outputs here (default: a temp dir, removed)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--memory-child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--child-model", type=Path, help=argparse.SUPPRESS)
    p.add_argument(
        "--memory-max-length",
        type=int,
        default=32,
        help="tokens per review for the tiny classifier of the memory part (default 32: plumbing, not model)",
    )
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


SET_ENV = "REVIEWOPS_BENCH_SET"  # the --set overrides as JSON, so the memory child reads them too


def bench_settings(**score: Any):
    """``params.yaml`` (the project's defaults) with the ``--set`` overrides, then ``score.*`` ones."""
    from reviewops.config import ScoreConfig, load_settings

    settings = load_settings(ROOT / "params.yaml", json.loads(os.environ.get(SET_ENV) or "[]"))
    if not score:
        return settings
    return settings.model_copy(update={"score": ScoreConfig.model_validate({**settings.score.model_dump(), **score})})


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory and load: what the figures ran on."""
    import psutil

    model = platform.processor() or ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        model = names[0] if names else model
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def base_with_random_head(settings, work: Path) -> tuple[Path, Path]:
    """The pulled base encoder with a seeded random 3-label head, built as training builds it, saved.

    Returns:
        The saved folder and the base it was built from.
    """
    import torch

    from reviewops.models.pretrained import resolve_model_path
    from reviewops.training.sentiment import _load_base

    base = resolve_model_path(settings.sentiment.model, settings)
    torch.manual_seed(settings.train.seed)
    tokenizer, model = _load_base(base, settings)
    out = work / "sentiment-base-random-head"
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out, Path(base)


def sentiment_model(args: argparse.Namespace, settings, work: Path) -> tuple[Path, str]:
    """(folder, what it is) of the classifier for parts 1-4."""
    from reviewops.scoring.models import resolve_model

    if args.sentiment_model:
        choice = resolve_model(settings, "sentiment", args.sentiment_model)
        return choice.path, f"given: {args.sentiment_model} ({choice.name})"
    if args.tiny:
        from reviewops.testing.tiny import build_tiny_encoder

        return build_tiny_encoder(work / "tiny-sentiment"), "tiny random encoder (reviewops.testing.tiny)"
    trained = ROOT / settings.paths.models_dir / "trained" / "sentiment"
    if (trained / "config.json").is_file():
        return trained, f"trained model {trained}"
    path, base = base_with_random_head(settings, work)
    return path, f"pulled base {base} with a seeded random 3-label head (no {trained})"


def summarizer_model(args: argparse.Namespace, settings, work: Path) -> tuple[Path, str]:
    """(folder, what it is) of the summarizer for part 2; a missing default stops the run before it starts."""
    from reviewops.errors import ReviewOpsError
    from reviewops.models.pretrained import resolve_model_path
    from reviewops.scoring.models import resolve_model

    if args.summarizer_model:
        choice = resolve_model(settings, "summarizer", args.summarizer_model)
        return choice.path, f"given: {args.summarizer_model} ({choice.name})"
    if args.tiny or args.tiny_summarizer:
        from reviewops.testing.tiny import build_tiny_causal_lm

        return build_tiny_causal_lm(work / "tiny-summarizer"), "tiny random causal LM (reviewops.testing.tiny)"
    trained = ROOT / settings.paths.models_dir / "trained" / "summarizer"
    if (trained / "config.json").is_file():
        return trained, f"trained model {trained}"
    try:
        path = Path(resolve_model_path(settings.summarizer.model, settings)).resolve()
    except ReviewOpsError as exc:
        sys.exit(f"error: {exc}; or pass --tiny-summarizer, --summarizer-model PATH or --skip-summaries")
    return path, f"pulled base {path} (no {trained})"


def _chunk_rows(args: argparse.Namespace, rows: int) -> int:
    """``--chunk-rows``, else a tenth of the input (so the steady rate has partitions to time), at least 100."""
    return args.chunk_rows or max(100, math.ceil(rows / 10))  # score.chunk_rows is at least 100


def steady_rate(events: list[tuple[float, str]], batch_size: int) -> float | None:
    """Reviews/s between the first and the last partition written; None when too few blocks to tell."""
    writes = [(t, int(m[2])) for t, line in events if (m := _WRITTEN.match(line))]
    rows = sum(n for _, n in writes)
    if len(writes) < 3 or rows < 8 * batch_size or writes[-1][0] <= writes[0][0]:
        return None
    return round(sum(n for _, n in writes[1:]) / (writes[-1][0] - writes[0][0]), 2)


def score_run(path: Path, out: Path, *, models: tuple[Path, Path | None], summaries: str, **score: Any) -> dict:
    """One ``run_score`` (tracking off) and its figures; ``score`` overrides ``score.*``."""
    from reviewops.scoring.score import run_score

    settings = bench_settings(summaries=summaries, **score)
    events: list[tuple[float, str]] = []
    result = run_score(
        settings,
        path=path,
        out_dir=out,
        summaries=summaries,
        sentiment_model=models[0],
        summarizer_model=models[1],
        track=False,
        log=lambda line: events.append((time.perf_counter(), line)),
    )
    tp, cfg = result.throughput, settings.score
    return {
        "input_rows": result.counts["input_rows"],
        "scored": result.counts["scored"],
        "summaries": result.summaries["count"],
        "partitions": result.partitions["total"],
        "chunk_rows": cfg.chunk_rows,
        "actors": cfg.actors,
        "threads_per_actor": cfg.threads_per_actor,
        "actor_cpus": cfg.actor_cpus,
        "seconds": tp["seconds"],
        "prepare_seconds": round(tp["seconds"] - tp["scoring_seconds"], 3),
        "scoring_seconds": tp["scoring_seconds"],
        "rows_per_s": tp["rows_per_s"],
        "steady_rows_per_s": steady_rate(events, cfg.batch_size),
    }


def write_input(work: Path, rows: int, seed: int) -> Path:
    """``rows`` generated reviews (``write_generated``, base scenario) as CSV in their own folder."""
    from reviewops.data.generate import write_generated

    return write_generated(work / f"input-{rows}", rows, seed=seed, scenario="base")


def naive_baseline(model_dir: Path, rows: int, cap: int, seed: int, threads: int = 0) -> dict:
    """A ``pipeline("text-classification")`` called once per review, on the first texts of the input.

    ``threads`` > 0 sets torch's thread count; 0 keeps its default (one per core).
    """
    import torch
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from reviewops.data.generate import generate_reviews
    from reviewops.models.sentiment import SentimentClassifier

    texts = [t for t in generate_reviews(rows, seed=seed)["text"].tolist() if isinstance(t, str) and t.strip()]
    texts = texts[:cap] if cap else texts
    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    hf_logging.set_verbosity_error()
    clf = SentimentClassifier.load(model_dir)  # the pooling the model records, as the engine reads it
    pipe = pipeline("text-classification", model=clf.model, tokenizer=clf.tokenizer, device=-1)
    kwargs = {"top_k": None, "truncation": True, "max_length": clf.cfg.max_length}
    load_s = time.perf_counter() - started
    for text in texts[:5]:  # warm-up, not timed
        pipe(text, **kwargs)
    started = time.perf_counter()
    for text in texts:
        pipe(text, **kwargs)
    seconds = time.perf_counter() - started
    return {
        "rows": len(texts),
        "capped": bool(cap) and len(texts) < rows,
        "of_rows": rows,
        "threads": torch.get_num_threads(),
        "load_seconds": round(load_s, 2),
        "seconds": round(seconds, 3),
        "rows_per_s": round(len(texts) / seconds, 2) if seconds > 0 else None,
    }


def naive_part(args: argparse.Namespace, sentiment: Path) -> list[dict]:
    """Part 3: the per-row pipeline with torch's default threads, then with one (``--naive-threads``: that only).

    With the cores shared, torch's default (a thread per core) can run many times slower than
    one thread, so both are measured and the ratios use the faster: the conservative baseline.
    """
    import torch

    default = torch.get_num_threads()
    plan = [args.naive_threads] if args.naive_threads else [0] + ([1] if default > 1 else [])
    runs = []
    for threads in plan:
        say(f"[naive] per-row pipeline, {threads or default} thread(s), at most {args.naive_rows or 'all'} rows ...")
        runs.append(naive_baseline(sentiment, args.rows[0], args.naive_rows, args.seed, threads))
        say(f"  {runs[-1]['rows_per_s']} reviews/s")
    return runs


def start_ray() -> float:
    """A local Ray for parts 1, 2 and 4, as ``ray_session`` starts one; returns the seconds it took."""
    from reviewops.scoring.engine import start_local_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = time.perf_counter()
    start_local_ray(bench_settings())
    return round(time.perf_counter() - started, 2)


def throughput_part(args: argparse.Namespace, work: Path, sentiment: Path) -> list[dict]:
    """Part 1: sentiment only at each ``--rows`` size, the project's actor settings."""
    results = []
    for rows in args.rows:
        say(f"[throughput] {rows:,} rows, summaries none ...")
        path = write_input(work, rows, args.seed)
        run = score_run(
            path,
            work / f"out-sent-{rows}",
            models=(sentiment, None),
            summaries="none",
            chunk_rows=_chunk_rows(args, rows),
        )
        say(f"  {run['scored']:,} scored: {run['rows_per_s']} reviews/s (steady {run['steady_rows_per_s']})")
        results.append({"rows": rows, **run})
    return results


def summaries_part(args: argparse.Namespace, work: Path, models: tuple[Path, Path]) -> dict:
    """Part 2: summaries all on ``--summary-rows`` rows."""
    rows = args.summary_rows
    say(f"[summaries] {rows:,} rows, summaries all ...")
    path = write_input(work, rows, args.seed)
    run = score_run(path, work / f"out-sum-{rows}", models=models, summaries="all", chunk_rows=_chunk_rows(args, rows))
    seconds = run["scoring_seconds"]
    run["summaries_per_s"] = round(run["summaries"] / seconds, 3) if seconds else None
    say(f"  {run['summaries']:,} summaries in {seconds} s: {run['summaries_per_s']} summaries/s")
    return {"rows": rows, **run}


def scaling_part(args: argparse.Namespace, work: Path, sentiment: Path, throughput: list[dict]) -> dict:
    """Part 4: one vs two actors of one thread each on the same rows; the part 1 run is reused when it matches."""
    rows = args.scaling_rows or args.rows[0]
    path = write_input(work, rows, args.seed)
    runs = {}
    for actors in (1, 2):
        same = [r for r in throughput if r["rows"] == rows and r["actors"] == actors and r["threads_per_actor"] == 1]
        if same:
            runs[actors] = {**same[0], "reused_from": "throughput"}
            continue
        say(f"[scaling] {rows:,} rows, {actors} actor(s) x 1 thread ...")
        runs[actors] = score_run(
            path,
            work / f"out-scale-{actors}-{rows}",
            models=(sentiment, None),
            summaries="none",
            chunk_rows=_chunk_rows(args, rows),
            actors=actors,
            threads_per_actor=1,
        )
        say(f"  {runs[actors]['rows_per_s']} reviews/s (steady {runs[actors]['steady_rows_per_s']})")
    return {"rows": rows, "one": runs[1], "two": runs[2], **_ratios(runs[2], runs[1])}


def _ratios(top: dict, bottom: dict | float | None) -> dict:
    """``top`` / ``bottom`` for the run_score and the steady rates (a float bottom divides both)."""
    out = {}
    for key in ("rows_per_s", "steady_rows_per_s"):
        b = bottom if isinstance(bottom, (int, float)) or bottom is None else bottom.get(key)
        t = top.get(key)
        out[f"ratio_{key}"] = round(t / b, 2) if t and b else None
    return out


def _tag(n: int) -> str:
    """A letters-only word for row ``n`` (no digits, so no PII rule and no dedup key can merge two rows)."""
    word = ""
    while True:
        n, r = divmod(n, 26)
        word = _LETTERS[r] + word
        if not n:
            return "zq" + word


def write_streamed_parquet(path: Path, rows: int, seed: int, chunk: int = 250_000) -> dict:
    """``rows`` generated reviews written to one Parquet file, one row group per generated chunk.

    Each chunk is its own ``generate_reviews`` call (seed + chunk number); review ids get a chunk
    prefix and non-empty texts a distinct word, so ids and texts stay distinct across chunks.
    Every column is stored as a string, as a CSV export would hold it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reviewops.data.generate import COLUMNS, generate_reviews

    schema = pa.schema([(c, pa.string()) for c in COLUMNS])
    started, done, index = time.perf_counter(), 0, 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(str(path), schema) as writer:
        while done < rows:
            n = min(chunk, rows - done)
            frame = generate_reviews(n, seed=seed + index)
            cols = {c: [None if v is None or v != v else str(v) for v in frame[c].tolist()] for c in COLUMNS}
            del frame
            cols["review_id"] = [f"C{index:04d}-{v}" if v else v for v in cols["review_id"]]
            cols["text"] = [f"{t} {_tag(done + i)}" if t and t.strip() else t for i, t in enumerate(cols["text"])]
            writer.write_table(pa.table(cols, schema=schema), row_group_size=n)
            done, index = done + n, index + 1
    return {"seconds": round(time.perf_counter() - started, 1), "mb": round(path.stat().st_size / 1e6, 1)}


class TreeSampler(threading.Thread):
    """Samples the summed RSS and PSS of a process and all its descendants until stopped; keeps the peaks."""

    def __init__(self, pid: int, interval: float) -> None:
        """Watch process ``pid`` every ``interval`` seconds."""
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stop = threading.Event()
        self.peak = {"rss_mb": 0.0, "pss_mb": 0.0, "driver_rss_mb": 0.0, "processes": 0, "samples": 0}
        self.at_peak: dict[str, float] = {}
        self.started, self.next_note = time.monotonic(), time.monotonic() + NOTE_EVERY_S
        self.log_tail: list[str] = []  # the child's last stderr lines (set by _read_log)
        self.scored = 0  # rows the child reported scored so far

    def run(self) -> None:
        """Sample until :attr:`stop` is set or the process is gone."""
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self.stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            rss = pss = 0.0
            by_name: dict[str, float] = {}
            for proc in procs:
                try:
                    mem, name = proc.memory_full_info(), proc.name()
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                rss, pss = rss + mem.rss / 2**20, pss + getattr(mem, "pss", mem.rss) / 2**20
                kind = "driver" if proc is root else name.split("(")[0][:40]
                by_name[kind] = by_name.get(kind, 0.0) + mem.rss / 2**20
            self._record(rss, pss, by_name, len(procs))
            self.stop.wait(self.interval)

    def _record(self, rss: float, pss: float, by_name: dict[str, float], processes: int) -> None:
        """Keep the peaks, and who held the memory at the RSS peak."""
        peak = self.peak
        peak["samples"] += 1
        peak["driver_rss_mb"] = max(peak["driver_rss_mb"], by_name.get("driver", 0.0))
        peak["pss_mb"] = max(peak["pss_mb"], pss)
        if rss > peak["rss_mb"]:
            peak["rss_mb"], peak["processes"] = rss, processes
            self.at_peak = {k: round(v, 1) for k, v in sorted(by_name.items(), key=lambda kv: -kv[1])}
        if time.monotonic() >= self.next_note:  # a long run says where it is (the child's log is captured)
            self.next_note += NOTE_EVERY_S
            say(
                f"  {time.monotonic() - self.started:.0f} s, {self.scored:,} rows scored: now {rss:.0f} MB RSS / "
                f"{pss:.0f} MB PSS over "
                f"{processes} processes; peak so far {peak['rss_mb']:.0f} / {peak['pss_mb']:.0f} MB"
            )


def _read_log(stream: Any, sampler: TreeSampler) -> None:
    """The child's stderr: keep its tail (for errors) and count the rows scored (for the progress line)."""
    for line in stream:
        sampler.log_tail = [*sampler.log_tail[-199:], line]
        if m := _WRITTEN.match(line.strip()):
            sampler.scored += int(m[2])


def memory_child(args: argparse.Namespace) -> None:
    """In the child: ``run_score`` on the Parquet file with the tiny classifier, summaries none; JSON on stdout."""
    from reviewops.scoring.score import run_score

    settings = bench_settings()
    sentiment = settings.sentiment.model_copy(update={"max_length": args.memory_max_length})
    result = run_score(
        settings.model_copy(update={"sentiment": sentiment}),
        path=args.memory_child,
        out_dir=args.child_out,
        summaries="none",
        sentiment_model=args.child_model,
        track=False,
        log=lambda line: print(line, file=sys.stderr, flush=True),  # the parent counts "partition N: ..." lines
    )
    print(json.dumps({k: result.to_dict()[k] for k in ("counts", "throughput", "partitions", "ray")}))


def memory_run(args: argparse.Namespace, work: Path, rows: int, tiny: Path) -> dict:
    """One memory size: the input streamed to disk, then a child scoring it, its process tree sampled."""
    import subprocess

    say(f"[memory] {rows:,} rows: writing the input in chunks ...")
    path = work / f"memory-{rows}" / f"stream_{rows}.parquet"
    written = write_streamed_parquet(path, rows, args.seed)
    say(f"  {written['mb']} MB in {written['seconds']} s; scoring in a child process ...")
    cmd = [sys.executable, __file__, "--memory-child", str(path), "--child-model", str(tiny)]
    cmd += ["--child-out", str(work / f"memory-{rows}" / "out"), "--memory-max-length", str(args.memory_max_length)]
    started = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT) as child:
        sampler = TreeSampler(child.pid, args.sample_s)
        reader = threading.Thread(target=_read_log, args=(child.stderr, sampler), daemon=True)
        sampler.start()
        reader.start()
        out = child.stdout.read() if child.stdout else ""
        child.wait()
        reader.join()
        sampler.stop.set()
        sampler.join()
    if child.returncode != 0:
        sys.exit(f"memory run at {rows} rows failed:\n{''.join(sampler.log_tail)[-3000:]}")
    got = json.loads(out.strip().splitlines()[-1])
    peak = {k: round(v, 1) if isinstance(v, float) else v for k, v in sampler.peak.items()}
    say(f"  peak {peak['rss_mb']:.0f} MB RSS summed over {peak['processes']} processes (PSS {peak['pss_mb']:.0f} MB)")
    return {
        "rows": rows,
        "input_mb": written["mb"],
        "generate_seconds": written["seconds"],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "counts": got["counts"],
        "seconds": got["throughput"]["seconds"],
        "rows_per_s": got["throughput"]["rows_per_s"],
        "partitions": got["partitions"]["total"],
        "chunk_rows": got["partitions"]["chunk_rows"],
        "tiny_max_length": args.memory_max_length,
        "peak": peak,
        "rss_mb_by_process_at_peak": sampler.at_peak,
    }


def memory_part(args: argparse.Namespace, work: Path) -> list[dict]:
    """Part 5 at each ``--memory-rows`` size, the tiny classifier standing in."""
    from reviewops.testing.tiny import build_tiny_encoder

    tiny = build_tiny_encoder(work / "tiny-memory-sentiment")
    return [memory_run(args, work, rows, tiny) for rows in args.memory_rows]


def _f(value: Any, digits: int = 1) -> str:
    """A table cell: thousands separators, ``-`` for nothing."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _x(ratio: float | None) -> str:
    """A ratio cell: ``2.31x`` or ``-``."""
    return "-" if ratio is None else f"{ratio:.2f}x"


def header_lines(report: dict) -> list[str]:
    """Command, machine, models and the shared Ray: what every figure below depends on."""
    m = report["machine"]
    load = " / ".join(f"{x:.2f}" for x in m["load_average_at_start"])
    end = " / ".join(f"{x:.2f}" for x in report.get("load_average_at_end", []))
    lines = [
        f"command: {report['command']}",
        f"machine: {m['cores']} cores ({m['usable_cores']} usable), {m['cpu']}, {m['memory_gb']} GB RAM, "
        f"Python {m['python']}; load average (1/5/15 min) at start {load}, at end {end} "
        "(a load above 0 before the run means other jobs shared the cores: rates are then pessimistic)",
    ]
    for role, note in report["models"].items():
        lines.append(f"{role}: {note}")
    if report.get("ray_start_seconds") is not None:
        lines.append(
            f"Ray (parts 1, 2, 4): one local Ray started in {report['ray_start_seconds']} s, not in the figures"
        )
    return lines


def throughput_table(report: dict) -> list[str]:
    """Part 1 with the naive baseline beside it (part 3)."""
    naive = report.get("naive")
    rate = naive["rows_per_s"] if naive else None
    lines = [
        "## Sentiment only (summaries none): Ray vs the naive per-row pipeline",
        "",
        "| rows in | scored | partitions | prepare s | scoring s | run_score reviews/s | steady reviews/s "
        "| naive reviews/s | naive s for these rows | Ray/naive (run_score) | Ray/naive (steady) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.get("throughput", []):
        measured = naive and not naive["capped"] and naive["of_rows"] == r["rows"]
        est = f"{r['scored'] / rate:,.0f} ({'measured' if measured else 'extrapolated'})" if rate else "-"
        ratio = _ratios(r, rate)
        lines.append(
            f"| {_f(r['rows'])} | {_f(r['scored'])} | {r['partitions']} | {_f(r['prepare_seconds'])} "
            f"| {_f(r['scoring_seconds'])} | {_f(r['rows_per_s'])} | {_f(r['steady_rows_per_s'])} | {_f(rate)} "
            f"| {est} | {_x(ratio['ratio_rows_per_s'])} | {_x(ratio['ratio_steady_rows_per_s'])} |"
        )
    for run in report.get("naive_runs", []):
        lines += [
            "",
            f'naive: `pipeline("text-classification")` on the same model, one call per review, '
            f"{run['threads']} torch thread(s), {_f(run['rows'])} reviews of the {_f(run['of_rows'])}-row input "
            f"in {run['seconds']} s = {run['rows_per_s']} reviews/s (model load {run['load_seconds']} s not counted)"
            + ("; capped: the rate is extrapolated to every size" if run["capped"] else "")
            + ("; the baseline in the table (the faster)" if run is naive and len(report["naive_runs"]) > 1 else ""),
        ]
    return lines


def summaries_table(report: dict) -> list[str]:
    """Part 2."""
    s = report["summaries"]
    return [
        "## Summaries all",
        "",
        "| rows in | scored | summaries | scoring s | summaries/s | steady reviews/s |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {_f(s['rows'])} | {_f(s['scored'])} | {_f(s['summaries'])} | {_f(s['scoring_seconds'])} "
        f"| {_f(s['summaries_per_s'], 3)} | {_f(s['steady_rows_per_s'])} |",
    ]


def scaling_table(report: dict) -> list[str]:
    """Part 4."""
    s = report["scaling"]
    lines = [
        "## One vs two workers (score.actors 1 vs 2, threads_per_actor 1)",
        "",
        "| workers | rows in | scored | scoring s | run_score reviews/s | steady reviews/s | run |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for n, r in ((1, s["one"]), (2, s["two"])):
        lines.append(
            f"| {n} x 1 thread | {_f(s['rows'])} | {_f(r['scored'])} | {_f(r['scoring_seconds'])} "
            f"| {_f(r['rows_per_s'])} | {_f(r['steady_rows_per_s'])} | {r.get('reused_from', 'own run')} |"
        )
    lines += [
        "",
        f"two / one: {_x(s['ratio_rows_per_s'])} (run_score rate), {_x(s['ratio_steady_rows_per_s'])} (steady rate)",
    ]
    return lines


def memory_table(report: dict) -> list[str]:
    """Part 5."""
    lines = [
        "## Peak memory (tiny classifier, summaries none, input streamed from Parquet)",
        "",
        "| rows in | input MB | scored | quarantined | deduplicated | partitions | run s | reviews/s "
        "| peak RSS sum MB | peak PSS sum MB | driver peak RSS MB | processes at peak |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["memory"]:
        c, p = r["counts"], r["peak"]
        lines.append(
            f"| {_f(r['rows'])} | {_f(r['input_mb'])} | {_f(c['scored'])} | {_f(c['quarantined'])} "
            f"| {_f(c['deduplicated'])} | {r['partitions']} | {_f(r['seconds'])} | {_f(r['rows_per_s'])} "
            f"| {_f(p['rss_mb'], 0)} | {_f(p['pss_mb'], 0)} | {_f(p['driver_rss_mb'], 0)} | {p['processes']} |"
        )
    lines.append("")
    lines.append(
        "method: psutil, every process under the child that runs run_score (driver, GCS, raylet, agents, "
        "workers, actors), sampled every interval; RSS counts shared pages (libraries, object store) in every "
        "process that maps them, PSS splits them, so the RSS sum is an upper bound."
    )
    first, last = report["memory"][0], report["memory"][-1]
    if last["rows"] > first["rows"] and first["peak"]["rss_mb"]:
        lines.append(
            f"flatness: {last['rows'] / first['rows']:,.0f}x the rows, "
            f"{last['peak']['rss_mb'] / first['peak']['rss_mb']:.2f}x the peak RSS sum, "
            f"{last['peak']['pss_mb'] / first['peak']['pss_mb']:.2f}x the peak PSS sum"
        )
    for r in report["memory"]:
        top = ", ".join(f"{k} {v:,.0f}" for k, v in list(r["rss_mb_by_process_at_peak"].items())[:6])
        lines.append(f"at {r['rows']:,} rows, RSS MB at the peak by process: {top}")
    return lines


def targets(report: dict) -> list[dict]:
    """The issue's targets, each with the measured value and PASS / FAIL (absent parts are left out)."""
    out = []
    naive = report.get("naive")
    for r in report.get("throughput", []) if naive else []:
        goal = TARGETS["ray_vs_naive"]
        ratio = _ratios(r, naive["rows_per_s"])["ratio_rows_per_s"]
        out.append(
            {"target": f"Ray >= {goal:g}x naive at {r['rows']:,} rows (run_score rate)", "value": ratio, "goal": goal}
        )
    if report.get("scaling"):
        goal = TARGETS["two_vs_one"]
        for key, rate in (("ratio_rows_per_s", "run_score"), ("ratio_steady_rows_per_s", "steady")):
            value = report["scaling"][key]
            if value is not None or rate == "run_score":
                out.append(
                    {"target": f"two one-thread workers >= {goal:g}x one ({rate} rate)", "value": value, "goal": goal}
                )
    if report.get("memory"):
        last, goal = report["memory"][-1], TARGETS["memory_gb"]
        for kind in ("rss", "pss"):
            gb = round(last["peak"][f"{kind}_mb"] / 1024, 2)
            what = f"peak {kind.upper()} sum <= {goal:g} GB at {last['rows']:,} rows"
            out.append({"target": what, "value": gb, "goal": goal, "max": True})
    for t in out:
        ok = t["value"] is not None and (t["value"] <= t["goal"] if t.get("max") else t["value"] >= t["goal"])
        t["verdict"] = "PASS" if ok else "FAIL"
    return out


def render(report: dict) -> str:
    """The whole printed report: header, one table per part that ran, the targets."""
    lines = header_lines(report)
    if report.get("throughput") or report.get("naive"):
        lines += ["", *throughput_table(report)]
    if report.get("summaries"):
        lines += ["", *summaries_table(report)]
    if report.get("scaling"):
        lines += ["", *scaling_table(report)]
    if report.get("memory"):
        lines += ["", *memory_table(report)]
    if report["targets"]:
        lines += ["", "## Targets (issue 13)", ""]
        lines += [f"- {t['target']}: {_f(t['value'], 2)} -> {t['verdict']}" for t in report["targets"]]
    return "\n".join(lines)


def run_parts(args: argparse.Namespace, work: Path, report: dict) -> None:
    """Parts 3, 1, 2, 4 (the naive baseline first, before Ray starts), then 5; results into ``report``."""
    settings = bench_settings()
    in_ray = not (args.skip_throughput and args.skip_summaries and args.skip_scaling)
    sentiment = None
    if in_ray or not args.skip_naive:
        sentiment, report["models"]["sentiment model"] = sentiment_model(args, settings, work)
    summarizer = None
    if not args.skip_summaries:
        summarizer, report["models"]["summarizer"] = summarizer_model(args, settings, work)
    if not args.skip_memory:
        report["models"]["memory part"] = "tiny random encoder (reviewops.testing.tiny), summaries none"
    if not args.skip_naive and sentiment is not None:
        report["naive_runs"] = naive_part(args, sentiment)
        report["naive"] = max(report["naive_runs"], key=lambda r: r["rows_per_s"] or 0.0)
    if in_ray and sentiment is not None:
        report["ray_start_seconds"] = start_ray()
        try:
            if not args.skip_throughput:
                report["throughput"] = throughput_part(args, work, sentiment)
            if summarizer is not None:
                report["summaries"] = summaries_part(args, work, (sentiment, summarizer))
            if not args.skip_scaling:
                report["scaling"] = scaling_part(args, work, sentiment, report.get("throughput", []))
        finally:
            import ray

            ray.shutdown()
    if not args.skip_memory:
        report["memory"] = memory_part(args, work)


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for; print the report (and write ``--json``)."""
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args)
        return 0
    if args.set:
        from reviewops.config import ConfigError

        os.environ[SET_ENV] = json.dumps(args.set)
        try:
            bench_settings()  # a bad override stops the run here, in one line
        except ConfigError as exc:
            sys.exit(f"error: {exc}")
    words = sys.argv[1:] if argv is None else argv
    report: dict[str, Any] = {
        "command": "python benchmarks/score_scale.py " + shlex.join(words),
        "machine": machine(),
        "models": {},
        "overrides": list(args.set),
    }
    with tempfile.TemporaryDirectory(prefix="reviewops-score-scale-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        run_parts(args, work, report)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["targets"] = targets(report)
    print(render(report))
    print(f"\ntotal {report['total_seconds']} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
