"""Real exports go in whole: no timestamp, exporter repeats, GBK/UTF-16, unquoted commas, odd ratings.

Each test builds the kind of file a user brings (nobody here wrote it for the pipeline) and runs
it through the validate stage: every record ends up valid, repeated or quarantined with the real
reason, and the counts add up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reviewops.config import PathsConfig, Settings
from reviewops.data.ingest import ingest, parse_rating
from reviewops.data.readers import detect_encoding
from reviewops.data.stages import run_validate
from reviewops.errors import ReviewOpsError

CHINESE = [
    "快递太慢了，等了一个星期，包装也破了。",
    "味道很好，价格实惠，会回购。",
    "质量一般，和描述不太一样。",
    "客服态度很好，问题很快解决了。",
    "非常满意，强烈推荐给大家！",
]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        paths=PathsConfig(
            gx_dir=tmp_path / "gx",
            interim_dir=tmp_path / "interim",
            quarantine_dir=tmp_path / "q",
            reports_dir=tmp_path / "reports",
        )
    )


def _validate(settings: Settings, path: Path, columns: dict | None = None, **kw) -> dict:
    report = run_validate(settings, path=path, columns=columns, build_docs=False, **kw)
    assert report["valid"] + report["quarantined"] + report["repeated"] == report["ingested"]
    return report


def _quarantine(report: dict) -> pd.DataFrame:
    return pd.read_parquet(report["quarantine_path"])


# ------------------------------------------------------------------ no timestamp column


def test_export_without_timestamps_goes_in(settings, tmp_path):
    # A clothing-store export: id, product, title, text, rating; no time at all.
    path = tmp_path / "clothing.csv"
    rows = [
        {
            "Review ID": f"c{i}",
            "Clothing ID": f"{i % 7}",
            "Title": "Nice fit",
            "Review Text": f"The fabric is soft and the size {i} fits well.",
            "Rating": str(1 + i % 5),
        }
        for i in range(60)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    report = _validate(
        settings,
        path,
        {
            "review_id": "Review ID",
            "product_id": "Clothing ID",
            "summary": "Title",
            "text": "Review Text",
            "rating": "Rating",
        },
    )
    assert (report["valid"], report["quarantined"]) == (60, 0)
    valid = pd.read_parquet(report["valid_path"])
    assert valid["timestamp"].isna().all()


def test_blank_timestamp_cells_are_missing_not_bad(settings, tmp_path):
    path = tmp_path / "some_dates.csv"
    path.write_text(
        "text,rating,timestamp\nGood value overall,5,2024-03-01\nArrived broken,1,\nFine I guess,3,not a date\n",
        encoding="utf-8",
    )
    report = _validate(settings, path, enforce=False)
    assert report["valid"] == 2
    assert report["failures"] == {"timestamp_iso8601": 1}  # a wrong time is still wrong


def test_drift_trend_says_when_timestamps_are_missing():
    from reviewops.monitoring.trend import trend_coverage

    df = pd.DataFrame({"timestamp": [None, None, "2024-01-01T00:00:00Z"]})
    assert trend_coverage(df)["note"] == "2 of 3 rows have no timestamp and are left out of the sentiment trend"
    assert "trend and its alerts are off" in trend_coverage(df.iloc[:2])["note"]
    assert trend_coverage(df.iloc[2:])["note"] is None


# ------------------------------------------------------------------ exporter repeats


def test_identical_repeats_are_deduplicated_and_conflicts_quarantined(settings, tmp_path):
    # 779 distinct reviews; 433 of them exported twice (the scraper's repeats); 2 ids reused for
    # different reviews (conflicts): 1,212 + 4 rows.
    base = [
        {
            "review_id": f"id{i}",
            "product_id": f"p{i % 13}",
            "text": f"Review number {i}, good stuff.",
            "rating": str(1 + i % 5),
            "timestamp": "2024-01-02T03:04:05Z",
        }
        for i in range(779)
    ]
    rows = base + base[:433]
    rows += [
        {**base[500], "text": "A different review under a reused id."},
        {**base[600], "rating": "2"},  # base[600] has 1 star
        {**base[700], "review_id": "fresh1"},
        {**base[701], "review_id": "fresh2"},
    ]
    path = tmp_path / "scraped.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    report = _validate(settings, path)
    assert report["ingested"] == 1216
    assert report["repeated"] == 433
    assert report["failures"] == {"review_id_conflict": 4}  # both copies of each conflicting id
    assert report["quarantined"] == 4 and report["valid"] == 1216 - 433 - 4
    repeats = pd.read_parquet(report["repeats_path"])
    assert len(repeats) == 433
    assert set(repeats["duplicate_kind"]) == {"repeated_row"}
    assert repeats.iloc[0]["duplicate_of"] == "scraped.csv:1"  # the kept copy, by file and row
    q = _quarantine(report)
    assert sorted(q["review_id"]) == ["id500", "id500", "id600", "id600"]
    assert set(q["quarantine_reason"]) == {"review_id_conflict"}


# ------------------------------------------------------------------ encodings


def test_gbk_export_with_chinese_headers(settings, tmp_path):
    path = tmp_path / "gbk_export.csv"
    lines = ["评论编号,商品,评论内容,评分,时间"] + [
        f"z{i},SKU{i % 3},{text},{1 + i % 5},2024-02-0{1 + i % 9}" for i, text in enumerate(CHINESE)
    ]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    with pytest.raises(UnicodeDecodeError):
        path.read_text(encoding="utf-8")  # really not UTF-8
    report = _validate(
        settings,
        path,
        {"review_id": "评论编号", "product_id": "商品", "text": "评论内容", "rating": "评分", "timestamp": "时间"},
    )
    assert report["encodings"] == {"gbk_export.csv": "gb18030"}
    assert (report["valid"], report["quarantined"]) == (5, 0)
    valid = pd.read_parquet(report["valid_path"])
    assert valid["text"].tolist() == CHINESE
    assert set(valid["language"]) == {"zh"}


@pytest.mark.parametrize(
    "encoding, name",
    [("utf-16", "utf-16"), ("utf-8-sig", "utf-8-sig"), ("utf-16-le", "utf-16-le"), ("gb18030", "gb18030")],
)
def test_encodings_are_detected(tmp_path, encoding, name):
    path = tmp_path / "excel.csv"  # Excel's "Unicode text" is UTF-16 with a BOM
    text = "text,rating\n" + "".join(f"{t},5\n" for t in CHINESE) + "Crème brûlée was great,4\n"
    path.write_bytes(text.encode(encoding))
    assert detect_encoding(path) == name
    result = ingest(path)
    assert result.encodings == {"excel.csv": name}
    assert result.df["text"].tolist() == [*CHINESE, "Crème brûlée was great"]


def test_latin1_is_refused_unless_forced(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,rating\nna\xefve but the crème is good,4\n".encode("latin-1"))
    with pytest.raises(ReviewOpsError, match="nor UTF-16 or GB18030.*--encoding"):
        ingest(path)
    assert ingest(path, encoding="latin-1").df["text"].tolist() == ["na\xefve but the crème is good"]
    with pytest.raises(ReviewOpsError, match="unknown encoding 'klingon'"):
        ingest(path, encoding="klingon")
    with pytest.raises(ReviewOpsError, match="not valid utf-8 text"):
        ingest(path, encoding="utf-8")


# ------------------------------------------------------------------ unquoted commas


def test_unquoted_commas_never_shift_columns(settings, tmp_path):
    path = tmp_path / "unquoted.csv"
    lines = ["review_id,product_id,text,rating"] + [f"u{i},P{i},Great taste, would buy again {i},5" for i in range(20)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest(path)
    assert len(result.df) == 0 and len(result.malformed) == 20  # nothing shifted into review_id
    report = run_validate(settings, path=path, build_docs=False, enforce=False)
    assert report["failures"] == {"field_count_mismatch": 20}
    q = _quarantine(report)
    assert q["raw_record"].iloc[0] == "u0,P0,Great taste, would buy again 0,5"
    assert q["quarantine_detail"].iloc[0].startswith("line 2: 5 fields where the header has 4")


def test_one_unquoted_comma_among_good_rows(settings, tmp_path):
    path = tmp_path / "mostly_fine.csv"
    lines = ["review_id,text,rating"] + [f"m{i},Solid product number {i},4" for i in range(30)]
    lines.insert(5, "m99,Cheap, but it works,3")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = _validate(settings, path)
    assert (report["ingested"], report["valid"], report["quarantined"]) == (31, 30, 1)
    valid = pd.read_parquet(report["valid_path"])
    assert valid["review_id"].str.startswith("m").all()
    assert (valid["text"].str.startswith("Solid product number")).all()


# ------------------------------------------------------------------ ratings


@pytest.mark.parametrize(
    "cell, value",
    [
        ("5", 5.0),
        ("5 stars", 5.0),
        ("1 star", 1.0),
        ("4,5", 4.5),
        ("3,5", 3.5),
        ("4.5/5", 4.5),
        ("4 out of 5", 4.0),
        ("five", 5.0),
        ("Five Stars", 5.0),
        ("★★★★☆", 4.0),
        ("5星", 5.0),
        ("五星", 5.0),
        ("4分", 4.0),
        (" 2 ", 2.0),
        ("great", None),
        ("8/10", None),
        ("1,000", None),
        ("N/A", None),
        ("", None),
    ],
)
def test_parse_rating_forms(cell, value):
    assert parse_rating(cell) == value


def test_unparseable_rating_keeps_its_value_and_real_reason(settings, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(
        'text,rating\nReally liked it,5 stars\nPretty good overall,"4,5"\nAmazing stuff,great\nNothing to say here,\n',
        encoding="utf-8",
    )
    report = run_validate(settings, path=path, build_docs=False, enforce=False)
    assert report["valid"] == 2
    assert report["failures"] == {"rating_not_null": 1, "rating_unparseable": 1}
    q = _quarantine(report).set_index("text")
    assert q.loc["Amazing stuff", "quarantine_reason"] == "rating_unparseable"
    assert q.loc["Amazing stuff", "rating_raw"] == "great"
    assert q.loc["Nothing to say here", "quarantine_reason"] == "rating_not_null"
    valid = pd.read_parquet(report["valid_path"])
    assert valid["rating"].tolist() == [5.0, 4.5]
    assert "rating_raw" not in valid.columns


# ------------------------------------------------------------------ the command line


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "reviewops", "--set", "paths.gx_dir=gx", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_rejected_batch_still_prints_its_report(tmp_path):
    path = tmp_path / "shifted.csv"
    path.write_text(
        "review_id,product_id,text,rating\n"
        + "".join(f"s{i},P{i},Tasty, fresh {i},5\n" for i in range(8))
        + "ok1,P1,Fine and fresh,4\n",
        encoding="utf-8",
    )
    proc = _cli(tmp_path, "validate", str(path), "--json", "--no-docs")
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["error"].startswith("batch 'shifted': 88.9% of rows failed validation")
    assert (report["ingested"], report["valid"], report["quarantined"]) == (9, 1, 8)
    assert report["failures"] == {"field_count_mismatch": 8}
    assert Path(tmp_path, report["quarantine_path"]).exists()
    assert Path(tmp_path, report["report_path"]).exists()
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()][-1].startswith("error: batch 'shifted'")


def test_adhoc_validate_never_touches_stage_outputs(tmp_path):
    stage_valid = tmp_path / "data" / "interim" / "valid.parquet"
    stage_valid.parent.mkdir(parents=True)
    stage_valid.write_bytes(b"the DVC stage's output")
    path = tmp_path / "mine.tsv"
    path.write_text(
        "text\trating\n" + "".join(f"A decent product {i} for the price\t4\n" for i in range(9)) + "Nope\tgreat\n",
        encoding="utf-8",
    )
    proc = _cli(tmp_path, "validate", str(path), "--json", "--no-docs")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert stage_valid.read_bytes() == b"the DVC stage's output"
    assert report["valid_path"] == "data/interim/batches/mine/valid.parquet"
    assert report["quarantine_path"] == "data/interim/batches/mine/quarantine.parquet"
    assert not (tmp_path / "reports").exists() and not (tmp_path / "data" / "quarantine").exists()
    # the quarantine is for its owner only
    assert os.stat(tmp_path / report["quarantine_path"]).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("batch", ["../x", "a/b", "..", "x\\y"])
def test_batch_names_with_separators_are_one_line_errors(tmp_path, batch):
    path = tmp_path / "r.csv"
    path.write_text("text,rating\nGood enough for me,4\n", encoding="utf-8")
    proc = _cli(tmp_path, "validate", str(path), "--batch", batch)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: batch name") and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_json_names_the_encoding(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(("text,rating\n" + "".join(f"{t},5\n" for t in CHINESE)).encode("gbk"))
    proc = _cli(tmp_path, "ingest", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["encodings"] == {"gbk.csv": "gb18030"} and info["rows"] == 5
    forced = _cli(tmp_path, "ingest", str(path), "--encoding", "gbk", "--json")
    assert json.loads(forced.stdout)["encodings"] == {"gbk.csv": "gbk"}


def test_adhoc_preprocess_and_split_stay_in_the_batch_folder(tmp_path):
    path = tmp_path / "tryout.csv"
    rows = ["review_id,product_id,text,rating"] + [
        f"t{i},P{i % 12},Review {i}: {'great value and works well' if i % 3 else 'broke fast and disappointed'},"
        f"{5 if i % 3 else 1}"
        for i in range(120)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert _cli(tmp_path, "validate", str(path), "--no-docs", "--json").returncode == 0
    folder = Path("data/interim/batches/tryout")
    pre = _cli(tmp_path, "preprocess", str(folder / "valid.parquet"), "--json")
    assert pre.returncode == 0, pre.stderr
    report = json.loads(pre.stdout)
    assert report["clean_path"] == str(folder / "clean.parquet")
    assert report["report_path"] == str(folder / "preprocess.json")
    spl = _cli(tmp_path, "split", str(folder / "clean.parquet"), "--json")
    assert spl.returncode == 0, spl.stderr
    assert json.loads(spl.stdout)["train"]["path"] == str(folder / "split" / "train.parquet")
    # nothing in the DVC pipeline's own files
    assert not (tmp_path / "data" / "interim" / "clean.parquet").exists()
    assert not (tmp_path / "data" / "processed").exists() and not (tmp_path / "reports").exists()
    assert not (tmp_path / "data" / "quarantine").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["preprocess"], "name the valid rows to read"),
        (["preprocess", "data/interim/valid.parquet"], "would replace the DVC pipeline's outputs"),
        (["split", "data/interim/clean.parquet", "--out-dir", "data/processed"], "pass --stage"),
        (["split", "data/interim/clean.parquet"], "no column(s) review_id, product_id, label, label_id"),
    ],
)
def test_adhoc_runs_refuse_the_stage_files(tmp_path, args, fragment):
    interim = tmp_path / "data" / "interim"
    interim.mkdir(parents=True)
    pd.DataFrame({"text": ["x"], "rating": [5.0]}).to_parquet(interim / "valid.parquet")
    pd.DataFrame({"text": ["x"], "rating": [5.0]}).to_parquet(interim / "clean.parquet")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = _cli(tmp_path, *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert fragment in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
