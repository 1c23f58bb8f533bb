"""The real Amazon Fine Food sample (../shared/data): ingest, validation invariant, cleaning."""

from __future__ import annotations

import pytest

from reviewops.config import PathsConfig, Settings
from reviewops.data.clean import preprocess
from reviewops.data.ingest import ingest, parse_column_map
from reviewops.data.validation import validate_batch
from tests.conftest import AMAZON_COLUMNS

pytestmark = pytest.mark.quality


def test_every_real_row_is_valid_quarantined_clean_or_a_recorded_duplicate(tmp_path, shared_csv):
    settings = Settings(paths=PathsConfig(gx_dir=tmp_path / "gx", quarantine_dir=tmp_path / "q"))
    batch = ingest(shared_csv, parse_column_map(AMAZON_COLUMNS)).df
    assert len(batch) == 1000
    assert batch["timestamp"].str.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$").all()
    result = validate_batch(batch, settings, "amazon", build_docs=False)
    assert result.valid_rows + result.quarantined_rows == 1000
    assert set(result.valid["review_id"]) | set(result.quarantined["review_id"]) == set(batch["review_id"])
    pre = preprocess(result.valid, settings.preprocess)
    r = pre.report
    assert r["clean_rows"] + r["duplicates"] + r["rejected_empty_after_cleaning"] == result.valid_rows
    # The sample repeats reviews under different products: dedup must find them.
    assert r["duplicates"] > 0
    assert not pre.clean["text"].str.contains("<br", regex=False).any()
    # Star ratings map to labels as documented (1-2 negative, 3 neutral, 4-5 positive).
    by_label = pre.clean.groupby("label")["rating"].agg(["min", "max"])
    assert by_label.loc["negative"].tolist() == [1, 2]
    assert by_label.loc["neutral"].tolist() == [3, 3]
    assert by_label.loc["positive"].tolist() == [4, 5]
