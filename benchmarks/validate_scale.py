"""How validation + preprocessing cost grows with batch size.

For each size, a fresh subprocess generates a batch with the synthetic generator (base
scenario, messy rows included), writes it as CSV, then times ingest, Great Expectations
validation (checkpoint over ALL rows, row-level quarantine, Data Docs; the one-off GX import and
context set-up is timed apart as gx_setup) and preprocessing
(cleaning, PII masking, dedup), and reports the child's peak resident memory. Sizes run
in separate processes so each peak is its own.

    python benchmarks/validate_scale.py                 # 10k, 100k, 1M
    python benchmarks/validate_scale.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(rows: int, workdir: Path, docs: bool) -> dict:
    from reviewops.config import PathsConfig, Settings
    from reviewops.data.clean import preprocess
    from reviewops.data.generate import write_generated
    from reviewops.data.gx import get_gx_project
    from reviewops.data.ingest import ingest
    from reviewops.data.validation import validate_batch

    settings = Settings(
        paths=PathsConfig(gx_dir=workdir / "gx", quarantine_dir=workdir / "q", reports_dir=workdir / "reports")
    )
    ts = time.perf_counter()
    get_gx_project(settings)  # GX import + file context, suite, checkpoint: a fixed start-up cost
    t0 = time.perf_counter()
    path = write_generated(workdir / "raw", rows, seed=7, scenario="base")
    t1 = time.perf_counter()
    ingested = ingest(path)  # reads with field-count checks and masks PII, as the validate stage does
    batch = ingested.df
    t2 = time.perf_counter()
    result = validate_batch(batch, settings, f"bench_{rows}", build_docs=docs, malformed=ingested.malformed)
    t3 = time.perf_counter()
    pre = preprocess(result.valid, settings.preprocess)
    t4 = time.perf_counter()
    assert result.valid_rows + result.quarantined_rows + result.repeated_rows == ingested.rows
    return {
        "rows": rows,
        "gx_setup_s": t0 - ts,
        "generate_s": t1 - t0,
        "ingest_s": t2 - t1,
        "validate_s": t3 - t2,
        "preprocess_s": t4 - t3,
        "validate_plus_preprocess_s": t4 - t2,
        "quarantined": result.quarantined_rows,
        "duplicates": pre.report["duplicates"],
        "clean": pre.report["clean_rows"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--no-docs", action="store_true", help="Skip Data Docs (default: build them).")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(_child(args.child, args.workdir, not args.no_docs)))
        return

    results = []
    for rows in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--child", str(rows), "--workdir", tmp]
            if args.no_docs:
                cmd.append("--no-docs")
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"size {rows} failed:\n{proc.stderr[-3000:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(
                f"{rows:>9,} rows: gx setup {r['gx_setup_s']:.1f}s  ingest {r['ingest_s']:.1f}s  "
                f"validate {r['validate_s']:.1f}s  "
                f"preprocess {r['preprocess_s']:.1f}s  peak {r['peak_rss_mb']:.0f} MB",
                flush=True,
            )

    print(
        "\n| rows | ingest s | validate s | preprocess s | validate+preprocess s | µs/row | "
        "peak RSS MB | time ratio vs previous | rows ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    prev = None
    for r in results:
        per_row = r["validate_plus_preprocess_s"] / r["rows"] * 1e6
        ratio = f"{r['validate_plus_preprocess_s'] / prev['validate_plus_preprocess_s']:.1f}x" if prev else "-"
        rows_ratio = f"{r['rows'] / prev['rows']:.0f}x" if prev else "-"
        print(
            f"| {r['rows']:,} | {r['ingest_s']:.1f} | {r['validate_s']:.1f} | {r['preprocess_s']:.1f} | "
            f"{r['validate_plus_preprocess_s']:.1f} | {per_row:.0f} | {r['peak_rss_mb']:.0f} | {ratio} | "
            f"{rows_ratio} |"
        )
        prev = r
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
