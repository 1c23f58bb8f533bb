"""The batch manifest: written once, matched on rerun, a one-line refusal naming what changed; stale temp files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.scoring import dataset
from reviewops.scoring.dataset import batch_dir, manifest_path, part_path, report_path, side_path, write_parquet_atomic
from reviewops.scoring.models import ModelChoice, ScoringModels
from reviewops.scoring.resume import (
    build_manifest,
    claim_batch,
    input_digests,
    remove_stale_temp_files,
    settings_digest,
)


def _models(version: str = "3") -> ScoringModels:
    return ScoringModels(
        sentiment=ModelChoice("sentiment", Path("m"), "review-sentiment", version, f"review-sentiment/{version}"),
        summarizer=None,
    )


def test_claim_then_reuse_then_refuse(tmp_path):
    settings = Settings()
    manifest = build_manifest(settings, inputs={"a.csv": "00"}, models=_models(), columns="text=Body")
    assert claim_batch(tmp_path, "b", manifest) is False  # new: manifest written
    assert manifest_path(tmp_path, "b").is_file()
    assert claim_batch(tmp_path, "b", manifest) is True  # same: parts may be reused
    changed = build_manifest(settings, inputs={"a.csv": "11"}, models=_models("4"), columns="text=Body")
    with pytest.raises(ReviewOpsError, match=r"scored with other inputs, models; use a new --out or --batch"):
        claim_batch(tmp_path, "b", changed)
    other = Settings(score={"summaries": "none"})
    with pytest.raises(ReviewOpsError, match="other summaries"):
        claim_batch(tmp_path, "b", build_manifest(other, inputs={"a.csv": "00"}, models=_models(), columns="text=Body"))


def test_parts_without_a_manifest_are_refused(tmp_path):
    part = part_path(tmp_path, "b", 0)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"")
    manifest = build_manifest(Settings(), inputs={}, models=_models(), columns=None)
    with pytest.raises(ReviewOpsError, match="no _manifest.json"):
        claim_batch(tmp_path, "b", manifest)


def test_digests(tmp_path):
    (tmp_path / "a.csv").write_text("text\nx\n")
    (tmp_path / "b.jsonl").write_text('{"text": "y"}\n')
    digests = input_digests(tmp_path)
    assert list(digests) == ["a.csv", "b.jsonl"] and all(len(d) == 64 for d in digests.values())
    assert settings_digest(Settings()) == settings_digest(Settings())
    assert settings_digest(Settings(validation={"min_text_chars": 7})) != settings_digest(Settings())


class Killed(BaseException):
    """Stands in for a SIGKILL between a file's temporary write and its rename."""


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_claim_removes_what_a_write_killed_before_its_rename_left(tmp_path, monkeypatch):
    manifest = build_manifest(Settings(), inputs={"a.csv": "00"}, models=_models(), columns=None)
    assert claim_batch(tmp_path, "b", manifest) is False
    write_parquet_atomic(pd.DataFrame({"a": [1]}), part_path(tmp_path, "b", 0))

    def killed(src: object, dst: object) -> None:
        raise Killed

    # the real writer, stopped where a kill would stop it: its temporary file written, not renamed
    monkeypatch.setattr(dataset, "os", SimpleNamespace(getpid=os.getpid, chmod=os.chmod, replace=killed))
    with pytest.raises(Killed):
        write_parquet_atomic(pd.DataFrame({"a": [2]}), part_path(tmp_path, "b", 1))
    with pytest.raises(Killed):
        write_parquet_atomic(pd.DataFrame({"a": [3]}), side_path(tmp_path, "quarantine", "b", 1), private=True)
    monkeypatch.undo()
    (left,) = batch_dir(tmp_path, "b").glob(".part-00001.parquet.*.tmp")
    assert left.name == f".part-00001.parquet.{os.getpid()}.tmp" and not part_path(tmp_path, "b", 1).exists()
    dead = batch_dir(tmp_path, "b") / f".part-00002.parquet.{_dead_pid()}.tmp"  # another killed run's
    dead.write_bytes(b"PAR1 half")
    report = report_path(tmp_path, "b")
    report.parent.mkdir(parents=True)
    stale_report = report.with_name(f".{report.name}.{_dead_pid()}.tmp")
    stale_report.write_text("{")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as alive:
        busy = batch_dir(tmp_path, "b") / f".part-00003.parquet.{alive.pid}.tmp"  # a live writer's: kept
        busy.write_bytes(b"")
        other = report.with_name(f".other.json.{_dead_pid()}.tmp")  # another batch's report: not ours
        other.write_text("{")
        assert claim_batch(tmp_path, "b", manifest) is True
        alive.kill()
    assert not left.exists() and not dead.exists() and not stale_report.exists()
    assert not list(side_path(tmp_path, "quarantine", "b", 0).parent.glob("*.tmp"))
    assert busy.exists() and other.exists()
    names = sorted(p.name for p in batch_dir(tmp_path, "b").iterdir())
    assert names == [busy.name, "_manifest.json", "part-00000.parquet"]
    assert remove_stale_temp_files(tmp_path, "nothing-here") == []
