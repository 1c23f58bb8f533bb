"""Run set-up shared by both trainers: settings flattened to MLflow params, data lineage."""

from __future__ import annotations

from pathlib import Path

from reviewops.config import Settings
from reviewops.training.common import data_lineage, flatten

ROOT = Path(__file__).resolve().parents[3]


def test_flatten_and_lineage(tmp_path: Path) -> None:
    flat = flatten(Settings().model_dump(mode="json"))
    assert flat["train.profiles.cpu.batch_size"] == "8" and flat["summarizer.kind"] == "auto"
    lineage = data_lineage(tmp_path, root=ROOT)
    if (ROOT / ".git").exists():
        assert len(lineage["git_commit"]) == 40
    assert "data/dvc_md5" not in data_lineage(tmp_path, root=tmp_path)
