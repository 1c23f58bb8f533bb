"""New batches: synthetic batches with unique ids, and the append-only copy into raw data with a new DVC version."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from reviewops.errors import ReviewOpsError
from reviewops.monitoring import batches
from tests.conftest import make_project


def test_generate_batch_prefixes_ids(tmp_path):
    path = batches.generate_batch(tmp_path, rows=40, seed=3, tag="T1")
    assert path.name == "batch-T1-language_sentiment_shift.csv"
    df = pd.read_csv(path, dtype=str)
    assert df["review_id"].dropna().str.startswith("T1-R-").all()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left behind


def test_append_batch_to_raw_new_dvc_version_and_guards(tmp_path, monkeypatch):
    from reviewops.config import load_settings
    from reviewops.data import versioning
    from reviewops.data.generate import write_generated

    project = make_project(tmp_path / "proj")
    monkeypatch.chdir(project)
    versioning.ensure_repo()
    settings = load_settings("params.yaml")
    base = write_generated(Path("data/raw"), 60, 1)
    base_bytes = base.read_bytes()
    v1 = versioning.track_raw(raw_dir=settings.paths.raw_dir)["md5"]

    batch = batches.generate_batch(tmp_path / "inbox", rows=30, seed=2, tag="B1")
    out = batches.append_batch_to_raw(settings, batch)
    assert out["old_version"] == v1 and out["new_version"] != v1 and out["changed"]
    assert yaml.safe_load(Path("data.dvc").read_text())["outs"][0]["md5"] == out["new_version"]
    assert sorted(p.name for p in Path("data/raw").iterdir()) == sorted([base.name, batch.name])
    assert (Path("data/raw") / out["raw_file"]).read_bytes() == batch.read_bytes()
    assert base.read_bytes() == base_bytes  # existing raw files are never touched

    with pytest.raises(ReviewOpsError, match="already in the raw data"):
        batches.append_batch_to_raw(settings, batch)
    # same ids as the default data set (write_generated numbers from R-00000001): refused
    clash = write_generated(tmp_path / "clash", 20, 9)
    with pytest.raises(ReviewOpsError, match="review id"):
        batches.append_batch_to_raw(settings, clash)
    # same file name, other content: appended under a new name, nothing overwritten
    other = batches.generate_batch(tmp_path / "other", rows=20, seed=5, tag="B2")
    other = other.rename(other.with_name(batch.name))
    again = batches.append_batch_to_raw(settings, other)
    assert again["raw_file"] == "batch-B1-language_sentiment_shift-1.csv"
    assert again["old_version"] == out["new_version"] != again["new_version"]
