"""``reviewops drift --scored DIR``: the current batch's predictions come from the scored dataset, the champion's
only for the reference side; a batch the dataset does not hold is one clear error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import distance
from typer.testing import CliRunner

from reviewops.cli.app import app
from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.scoring.dataset import part_path, scored_table, write_parquet_atomic
from reviewops.scoring.predictor import SCORED_COLUMNS

ROWS = 200  # per side; drift.sample_size is above it, so the "samples" are every row


def _processed(rows: int, seed: int, scenario: str = "base") -> pd.DataFrame:
    from reviewops.data.clean import preprocess
    from reviewops.data.generate import generate_reviews

    raw = generate_reviews(rows, seed, scenario)
    raw = raw[raw["rating"].between(1, 5) & raw["language"].isin(["en", "zh"])]
    return preprocess(raw, Settings().preprocess).clean.reset_index(drop=True)


def _scored_labels(current: pd.DataFrame) -> list[str]:
    """What the scoring run "predicted": the rating's label, but every fourth review called neutral."""
    return ["neutral" if i % 4 == 0 else label for i, label in enumerate(current["label"])]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """cur.parquet / ref.parquet, a scored dataset holding batch ``cur``, a tiny champion in models/trained."""
    from reviewops.testing.tiny import build_tiny_encoder

    root = tmp_path_factory.mktemp("drift-scored")
    ref, cur = _processed(ROWS, 1), _processed(ROWS, 3, "language_sentiment_shift")
    ref.to_parquet(root / "ref.parquet")
    cur.to_parquet(root / "cur.parquet")
    scored = pd.DataFrame({c: None for c in SCORED_COLUMNS}, index=cur.index)
    scored[["review_id", "product_id", "rating", "text", "language"]] = cur[
        ["review_id", "product_id", "rating", "text", "language"]
    ]
    scored["batch"], scored["sentiment"] = "cur", _scored_labels(cur)
    for col in ("p_negative", "p_neutral", "p_positive"):
        scored[col] = 1 / 3
    write_parquet_atomic(scored_table(scored), part_path(root / "scored", "cur", 0))
    other = scored.head(3).assign(batch="other", review_id=["x1", "x2", "x3"])  # another batch's reviews
    write_parquet_atomic(scored_table(other), part_path(root / "scored", "other", 0))
    encoder = build_tiny_encoder(root / "models" / "trained" / "sentiment")
    return root, ref, cur, encoder


def _invoke(root, monkeypatch, *extra: str):
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = [
        "--set",
        f"drift.embedding_model={root / 'models' / 'trained' / 'sentiment'}",
        "--set",
        f"drift.sample_size={2 * ROWS}",
        "--set",
        f"paths.models_dir={root / 'models'}",
        "drift",
        "--current",
        "cur.parquet",
        "--reference",
        "ref.parquet",
        "--no-track",
        "--json",
        *extra,
    ]
    return CliRunner().invoke(app, args)


def _shares(labels) -> dict[str, float]:
    return pd.Series(list(labels)).value_counts(normalize=True).to_dict()


@pytest.mark.slow  # the champion lookup creates an MLflow database (~10-20 s here) before the check runs
def test_drift_reads_the_current_predictions_from_the_scored_dataset(workdir, monkeypatch):
    from reviewops.models.sentiment import SentimentClassifier
    from reviewops.monitoring.descriptors import as_texts

    root, ref, cur, encoder = workdir
    res = _invoke(root, monkeypatch, "--name", "scored", "--scored", "scored")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["predictions"]["reference"] == "champion" and out["predictions"]["current"] == "scored dataset"
    assert out["predictions"]["scored"] == {
        "source": "scored dataset",
        "path": "scored",
        "batch": "cur",  # the name `reviewops score cur.parquet` gives the batch
        "column": "sentiment",
        "scored_rows": len(cur),
        "matched": len(cur),
    }
    assert out["champion"]["sentiment"] == str(encoder)
    # The prediction drift compares the champion on the reference side with the scored labels.
    champion = SentimentClassifier.load(encoder, Settings().sentiment).predict(as_texts(ref["text"]).tolist())
    ref_shares, cur_shares = _shares(champion), _shares(_scored_labels(cur))
    keys = sorted(set(ref_shares) | set(cur_shares))
    expected = distance.jensenshannon([ref_shares.get(k, 0) for k in keys], [cur_shares.get(k, 0) for k in keys])
    summary = json.loads((root / "reports" / "drift" / "scored.json").read_text(encoding="utf-8"))
    assert summary["columns"]["pred_sentiment"]["score"] == pytest.approx(float(expected), abs=1e-6)
    # The batch has ratings and predictions: their agreement is 3 in 4 (every fourth review relabelled neutral).
    agree = np.mean([s == lab for s, lab in zip(_scored_labels(cur), cur["label"], strict=True)])
    assert out["sentiment_agreement"] == pytest.approx(round(float(agree), 4))
    assert summary["predictions"] == {"reference": "champion", "current": "scored dataset"}


def test_drift_without_scored_predicts_nothing_as_before(workdir, monkeypatch):
    root, *_ = workdir
    res = _invoke(root, monkeypatch, "--name", "plain")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["predictions"] == {"reference": None, "current": None, "scored": None}
    assert out["sentiment_agreement"] is None and out["champion"] is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scored-batch", "tuesday"], "no scored rows for batch 'tuesday' under scored"),
        (["--scored-batch", "cur", "--scored", "elsewhere"], "no scored rows for batch 'cur' under elsewhere"),
        (["--scored-batch", "other"], "no scored row matches the batch's review ids (batch 'other' in scored)"),
    ],
)
def test_a_batch_the_scored_dataset_lacks_is_one_clear_error(workdir, monkeypatch, extra, message):
    root, *_ = workdir
    res = _invoke(root, monkeypatch, "--scored", "scored", *extra)
    assert isinstance(res.exception, ReviewOpsError) and message in str(res.exception)
    assert "\n" not in str(res.exception)
