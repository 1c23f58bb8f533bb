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


def test_append_existing_ok_continues_with_the_copy_a_dead_run_left(tmp_path, monkeypatch):
    """A re-tune taking over from a worker killed after its copy (before or after data.dvc) resumes."""
    import shutil

    from reviewops.config import load_settings
    from reviewops.data import versioning
    from reviewops.data.generate import write_generated

    project = make_project(tmp_path / "proj")
    monkeypatch.chdir(project)
    versioning.ensure_repo()
    settings = load_settings("params.yaml")
    write_generated(Path("data/raw"), 60, 1)
    v1 = versioning.track_raw(raw_dir=settings.paths.raw_dir)["md5"]
    batch = batches.generate_batch(tmp_path / "inbox", rows=30, seed=2, tag="B1")

    # the dead worker copied the batch but died before recording data.dvc
    shutil.copyfile(batch, Path("data/raw") / batch.name)
    assert versioning.data_version(Path("data.dvc")) == v1
    out = batches.append_batch_to_raw(settings, batch, existing_ok=True)
    assert out["reused"] and out["raw_file"] == batch.name and out["changed"]
    assert out["old_version"] == v1 != out["new_version"]
    assert yaml.safe_load(Path("data.dvc").read_text())["outs"][0]["md5"] == out["new_version"]
    assert len(list(Path("data/raw").iterdir())) == 2  # nothing copied twice

    # ... or after recording it: same file, same version, nothing changed
    again = batches.append_batch_to_raw(settings, batch, existing_ok=True)
    assert again["reused"] and again["new_version"] == out["new_version"] and not again["changed"]
    # without existing_ok (the CLI's append) it is still refused
    with pytest.raises(ReviewOpsError, match="already in the raw data"):
        batches.append_batch_to_raw(settings, batch)
    # a new batch with existing_ok appends as usual
    fresh = batches.generate_batch(tmp_path / "inbox2", rows=20, seed=4, tag="B2")
    new = batches.append_batch_to_raw(settings, fresh, existing_ok=True)
    assert not new["reused"] and new["changed"] and len(list(Path("data/raw").iterdir())) == 3
