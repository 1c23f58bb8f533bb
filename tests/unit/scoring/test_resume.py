"""The batch manifest: written once, matched on rerun, a one-line refusal naming what changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.scoring.dataset import manifest_path, part_path
from reviewops.scoring.models import ModelChoice, ScoringModels
from reviewops.scoring.resume import build_manifest, claim_batch, input_digests, settings_digest


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
