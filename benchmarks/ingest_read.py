"""Reading a CSV export: pandas' C parser vs ReviewOps' field-count-checked reader, side by side.

pandas.read_csv silently shifts every column when each row has one unquoted comma too many,
so ingest checks each record's field count: pyarrow's reader for well-formed files (any ragged
record sends the file to the exact ``csv``-module reader, which numbers every record). This
prices both readers against pandas on the same generated file, in one process, each timed
``--repeat`` times (best of), plus the rest of ingest (mapping, rating parse, PII masking,
language detection).

    python benchmarks/ingest_read.py                      # 100k and 1M rows
    python benchmarks/ingest_read.py --sizes 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()

    import pandas as pd

    from reviewops.data.generate import write_generated
    from reviewops.data.ingest import ingest
    from reviewops.data.readers import _read_checked, _read_delimited

    results = []
    for rows in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = write_generated(Path(tmp), rows, seed=7, scenario="base")
            mb = path.stat().st_size / 1e6
            t_pandas, df_pandas = _best(
                lambda p=path: pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8"), args.repeat
            )
            t_checked, table = _best(lambda p=path: _read_delimited(p, ",", "utf-8"), args.repeat)
            t_exact, exact = _best(lambda p=path: _read_checked(p, ",", "utf-8"), args.repeat)
            for got in (table, exact):  # same cells as pandas, nothing set aside
                assert got.df.shape == df_pandas.shape and not got.malformed
                assert got.df.equals(df_pandas.astype(object))
            t_ingest, _ = _best(lambda p=path: ingest(p), args.repeat)
            t_nomask, _ = _best(lambda p=path: ingest(p, mask_pii=False), args.repeat)
        r = {
            "rows": rows,
            "csv_mb": round(mb, 1),
            "pandas_read_csv_s": t_pandas,
            "checked_reader_s": t_checked,
            "reader_ratio": t_checked / t_pandas,
            "exact_reader_s": t_exact,
            "exact_ratio": t_exact / t_pandas,
            "ingest_s": t_ingest,
            "ingest_no_mask_s": t_nomask,
        }
        results.append(r)
        print(
            f"{rows:>9,} rows ({mb:.0f} MB): pandas.read_csv {t_pandas:.2f}s | ingest's reader {t_checked:.2f}s "
            f"({r['reader_ratio']:.2f}x) | exact csv-module reader {t_exact:.2f}s ({r['exact_ratio']:.2f}x) | "
            f"whole ingest {t_ingest:.2f}s (without PII masking {t_nomask:.2f}s)",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
