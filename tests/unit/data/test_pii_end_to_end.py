"""No PII past raw: the data half and a drift check write no email, phone number or private URL.

A PII-laden export goes through the command line as a user runs it (validate as the DVC stage
does, preprocess, split, an ad-hoc validation, ingest --out, a drift check logged to MLflow);
then every file written outside the raw inputs is searched, Parquet cells decoded.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

PII = {
    "email": ["jane.doe@example.com", "wang.lei88@qq.com"],
    "phone": ["5558675309", "(555) 867-5309", "+1 555-867-5309", "13812345678", "+86 138 1234 5678"],
    "url": ["https://private.example.org/u/98765", "www.my-shop-secret.com/order"],
}
ALL_PII = [p for values in PII.values() for p in values]
# What the searches look for: each PII value, and its bare digits / address part, so a mask that
# left the number in another format is caught too.
NEEDLES = sorted(
    {*ALL_PII, "8675309", "1381234", "138 1234", "jane.doe", "wang.lei88", "private.example.org", "my-shop-secret"}
)

EN = [
    "Great coffee, rich and smooth.",
    "The blender broke after a week.",
    "Fits well, nice fabric.",
    "Battery lasts two days, happy with it.",
    "Terrible smell, returned it.",
]
ZH = ["味道很好，会回购。", "快递太慢了，包装也破了。", "质量不错，性价比高。"]


def _write_export(path: Path, rows: int, seed: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review_id", "product_id", "text", "summary", "rating", "timestamp"])
        for i in range(rows):
            zh = i % 4 == 0
            body = (ZH if zh else EN)[i % (3 if zh else 5)]
            pii = ALL_PII[(i + seed) % len(ALL_PII)]
            text = f"{body} {'联系' if zh else 'Contact'} {pii} {i}"
            summary = f"Title {i} {pii}" if i % 5 == 0 else f"Title {i}"
            rating = str(1 + i % 5) if i % 29 else "9"  # some rows quarantined, PII and all
            w.writerow([f"s{seed}-{i}", f"P{i % 9}", text, summary, rating, f"2024-0{1 + i % 6}-1{i % 9}"])
        w.writerow([f"s{seed}-bad", "P1", "unquoted", "comma jane.doe@example.com 5558675309", "x", "5", "2024"])


def _hits_in_parquet(path: Path) -> list[str]:
    df = pd.read_parquet(path)
    hits = []
    for col in df.columns:
        values = df[col].dropna().astype(str)
        for needle in NEEDLES:
            if values.str.contains(needle, regex=False).any():
                hits.append(f"{path}:{col}:{needle}")
    return hits


def _hits_in_file(path: Path) -> list[str]:
    data = path.read_bytes()
    text = data.decode("utf-8", errors="ignore")
    variants = [text, data.decode("utf-16", errors="ignore")] if b"\x00" in data[:200] else [text]
    return [f"{path}:{needle}" for needle in NEEDLES for t in variants if needle in t]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from reviewops.testing.tiny import build_tiny_encoder

    root = tmp_path_factory.mktemp("pii")
    encoder = build_tiny_encoder(root / "_encoder")
    (root / "data" / "raw").mkdir(parents=True)
    (root / "inputs").mkdir()
    _write_export(root / "data" / "raw" / "reviews.csv", 240, 0)
    _write_export(root / "inputs" / "new_batch.csv", 120, 1)
    env = {**os.environ, "COLUMNS": "200", "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    sets = [
        "--set",
        "drift.sample_size=60",
        "--set",
        f"drift.embedding_model={encoder}",
        "--set",
        "drift.champion_predictions=none",
        "--set",
        "validation.max_failure_rate=0.5",
    ]

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "reviewops", *sets, *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{args}: {proc.stderr[-2000:]}"
        return proc

    run("validate", "data/raw", "--stage", "--batch", "raw", "--json")  # with Data Docs
    run("preprocess", "--stage", "--json")
    run("split", "--stage", "--json")
    run("validate", "inputs/new_batch.csv", "--json", "--no-docs")
    run("ingest", "inputs/new_batch.csv", "--out", "data/interim/ingested.parquet", "--json")
    run(
        "drift",
        "--current",
        "inputs/new_batch.csv",
        "--reference",
        "data/processed/train.parquet",
        "--name",
        "pii-check",
        "--track",
        "--json",
    )
    return root


def test_pii_really_is_in_the_inputs(project):
    raw = (project / "data" / "raw" / "reviews.csv").read_text(encoding="utf-8")
    assert all(p in raw for p in ALL_PII)


def test_no_file_past_raw_holds_pii(project):
    inputs = {project / "data" / "raw", project / "inputs", project / "_encoder"}
    searched, hits = [], []
    for path in sorted(project.rglob("*")):
        if not path.is_file() or any(parent in inputs for parent in path.parents):
            continue
        searched.append(path.relative_to(project).as_posix())
        if path.suffix == ".parquet":
            hits += _hits_in_parquet(path)
        elif path.suffix not in (".db",):
            hits += _hits_in_file(path)
    assert not hits, hits
    # the search did reach every kind of output the issue names
    for expected in (
        "data/interim/valid.parquet",
        "data/interim/clean.parquet",
        "data/processed/train.parquet",
        "data/quarantine/raw.parquet",
        "data/interim/batches/new_batch/quarantine.parquet",
        "data/interim/ingested.parquet",
        "reports/drift/pii-check.html",
        "reports/validation/raw.json",
    ):
        assert expected in searched, expected
    assert any("data_docs" in p for p in searched)
    assert any(p.startswith("mlruns/") or p.startswith("mlartifacts/") for p in searched), searched[-20:]


def test_mlflow_database_holds_no_pii(project):
    data = (project / "mlflow.db").read_bytes().decode("utf-8", errors="ignore")
    assert not [n for n in NEEDLES if n in data]


def test_masks_are_where_the_pii_was(project):
    valid = pd.read_parquet(project / "data" / "interim" / "valid.parquet")
    joined = " ".join(valid["text"])
    assert "[EMAIL]" in joined and "[PHONE]" in joined and "[URL]" in joined
    quarantine = pd.read_parquet(project / "data" / "quarantine" / "raw.parquet")
    assert "field_count_mismatch" in set(quarantine["quarantine_reason"])
    assert os.stat(project / "data" / "quarantine" / "raw.parquet").st_mode & 0o777 == 0o600
