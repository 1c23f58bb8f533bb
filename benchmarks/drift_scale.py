"""Drift-check time and peak memory at 10k / 100k / 1M reviews per side.

Each size runs in its own subprocess so that peak RSS (``ru_maxrss``) is that size's alone.
Descriptors and categorical drift run on all rows; embeddings and the text domain classifier on
``drift.sample_size`` rows per side, so their cost should stay flat while the rest grows ~linearly.

    python benchmarks/drift_scale.py                       # 10k, 100k and 1M
    python benchmarks/drift_scale.py --sizes 10000 100000
    python benchmarks/drift_scale.py --tiny-encoder        # random 2-layer encoder instead of MiniLM

Data: ``reviewops.data.generate.generate_reviews`` (reference seed 1 ``base``; current seed 2,
``language_sentiment_shift`` so the check has something to find), ratings outside 1-5 dropped,
labels from ratings; no other preprocessing (it is not part of the drift check).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = [
    ("descriptors", "descriptors"),
    ("Evidently report on all rows", "all_rows_report"),
    ("embedding", "embedding"),
    ("Evidently report on the samples", "sample_report"),
    ("wrote", "outputs"),
]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _frame(rows: int, seed: int, scenario: str):
    from reviewops.data.generate import generate_reviews
    from reviewops.schema import rating_to_label

    df = generate_reviews(rows, seed, scenario)
    df = df[df["rating"].between(1, 5) & df["text"].notna()].reset_index(drop=True)
    df["label"] = df["rating"].map(rating_to_label)
    return df


def worker(rows: int, sample_size: int, tiny: bool) -> dict:
    """One size in this process: generate, run the drift check, report phases and peak RSS."""
    from reviewops.config import Settings
    from reviewops.monitoring.drift import run_drift

    t0 = time.perf_counter()
    ref = _frame(rows, 1, "base")
    cur = _frame(rows, 2, "language_sentiment_shift")
    gen_s = time.perf_counter() - t0
    rss_data = _rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        drift: dict[str, object] = {"sample_size": sample_size}
        if tiny:
            from reviewops.testing.tiny import build_tiny_encoder

            drift["embedding_model"] = str(build_tiny_encoder(Path(tmp) / "tiny"))
        settings = Settings.model_validate({"paths": {"reports_dir": str(Path(tmp) / "reports")}, "drift": drift})
        marks: list[tuple[str, float]] = []
        start = time.perf_counter()
        result = run_drift(
            settings,
            reference=ref,
            current=cur,
            name=f"bench-{rows}",
            track=False,
            log=lambda msg: marks.append((msg, time.perf_counter())),
        )
        total = time.perf_counter() - start
        assert result.html_path is not None  # run_drift always writes the page
        html_mb = result.html_path.stat().st_size / 1e6
    marks.append(("end", start + total))
    phases = {}
    for (msg, t), (_, t_next) in zip(marks, marks[1:], strict=False):
        key = next((k for prefix, k in PHASES if msg.startswith(prefix)), msg)
        phases[key] = round(t_next - t, 2)
    return {
        "rows": rows,
        "ref_rows": len(ref),
        "cur_rows": len(cur),
        "unique_texts": int(cur["text"].nunique()),
        "generate_s": round(gen_s, 2),
        "drift_s": round(total, 2),
        "phases": phases,
        "rss_after_data_mb": round(rss_data, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "html_mb": round(html_mb, 1),
        "drifted": result.drifted,
        "fired": result.decision.fired,
        "sampling": result.summary["sampling"]["note"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--sample-size", type=int, default=2000)
    parser.add_argument("--tiny-encoder", action="store_true", help="random tiny encoder (no MiniLM cost)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.sample_size, args.tiny_encoder)))
        return
    results = []
    for rows in args.sizes:
        cmd = [sys.executable, __file__, "--worker", str(rows), "--sample-size", str(args.sample_size)]
        cmd += ["--tiny-encoder"] if args.tiny_encoder else []
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "DO_NOT_TRACK": "1"})
        if proc.returncode != 0:
            sys.exit(f"size {rows} failed:\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(res)
        print(f"done {rows}: {res['drift_s']} s", file=sys.stderr, flush=True)
    head = (
        f"{'rows/side':>10} {'drift s':>8} {'x time':>7} {'x rows':>7} {'descr s':>8} {'all-rows rep s':>14} "
        f"{'embed s':>8} {'sample rep s':>12} {'peak RSS MB':>11} {'RSS w/o check':>13}"
    )
    print(head)
    prev = None
    for r in results:
        p = r["phases"]
        ratio_t = f"{r['drift_s'] / prev['drift_s']:.1f}" if prev else "-"
        ratio_n = f"{r['rows'] / prev['rows']:.0f}" if prev else "-"
        print(
            f"{r['rows']:>10} {r['drift_s']:>8.1f} {ratio_t:>7} {ratio_n:>7} {p.get('descriptors', 0):>8.1f} "
            f"{p.get('all_rows_report', 0):>14.1f} {p.get('embedding', 0):>8.1f} "
            f"{p.get('sample_report', 0):>12.1f} {r['peak_rss_mb']:>11.0f} {r['rss_after_data_mb']:>13.0f}"
        )
        prev = r
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
