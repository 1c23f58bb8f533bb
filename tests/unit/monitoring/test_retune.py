"""Re-tuning library: settings overrides, the re-tune split with replay, forgetting metrics, the starting point."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from reviewops.config import ConfigError, Settings
from reviewops.errors import ReviewOpsError
from reviewops.monitoring import retune
from reviewops.schema import LABEL2ID, LABELS
from tests.unit.monitoring.helpers import monitor_settings


def _processed(n: int, source: str, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review_id": [f"{source}-{i:04d}" for i in range(start, start + n)],
            "product_id": [f"P{i % 5}" for i in range(n)],
            "text": [f"review {source} {i}" for i in range(n)],
            "summary": [f"title {i}" for i in range(n)],
            "label": [LABELS[i % 3] for i in range(n)],
            "label_id": [LABEL2ID[LABELS[i % 3]] for i in range(n)],
            "language": ["en"] * n,
            "source_file": [source] * n,
        }
    )


def _write_processed(settings: Settings, sizes: dict[str, tuple[int, int]]) -> None:
    out = Path(settings.paths.processed_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split, (n_old, n_new) in sizes.items():
        pd.concat([_processed(n_old, "reviews_base.csv"), _processed(n_new, "batch-x.csv")]).to_parquet(
            out / f"{split}.parquet", index=False
        )


# --------------------------------------------------------------------------- settings


def test_settings_with_revalidates_and_leaves_the_original(tmp_path):
    base = Settings()
    tuned = retune.settings_with(
        base, ["train.profile=quick", f"paths.processed_dir={tmp_path}", "drift.replay_fraction=0.25"]
    )
    assert tuned.train.profile == "quick" and tuned.train.active.summarizer_max_steps == 4
    assert tuned.paths.processed_dir == tmp_path and tuned.drift.replay_fraction == 0.25
    assert base.train.profile == "cpu"
    with pytest.raises(ConfigError, match="drift.replay_fractio"):
        retune.settings_with(base, ["drift.replay_fractio=0.2"])
    with pytest.raises(ConfigError, match="drift.replay_fraction"):
        retune.settings_with(base, ["drift.replay_fraction=2"])


# --------------------------------------------------------------------------- replay + split


@pytest.mark.parametrize(
    ("n_new", "n_old", "fraction", "expected"),
    [
        (100, 1000, 0.5, 100),
        (100, 1000, 0.2, 25),
        (100, 1000, 0.0, 0),
        (100, 1000, 1.0, 1000),
        (100, 40, 0.5, 40),
        (0, 10, 0.5, 0),
        (10, 0, 0.5, 0),
    ],
)
def test_replay_count(n_new, n_old, fraction, expected):
    assert retune.replay_count(n_new, n_old, fraction) == expected


def test_build_retune_split_counts_replay_and_determinism(tmp_path):
    settings = monitor_settings(tmp_path, replay_fraction=0.5)
    _write_processed(settings, {"train": (300, 60), "val": (40, 8), "test": (50, 10)})
    out = tmp_path / "retune"
    report = retune.build_retune_split(settings, ["batch-x.csv"], out)
    assert report["train"] == {"rows": 120, "new": 60, "replay": 60, "old_available": 300}
    assert report["val"] == {"rows": 16, "new": 8, "replay": 8, "old_available": 40}
    assert report["test"] == {"rows": 60, "new": 10, "old": 50}
    train = pd.read_parquet(out / "train.parquet")
    assert (train["source_file"] == "batch-x.csv").sum() == 60
    assert train["review_id"].is_unique and train["review_id"].is_monotonic_increasing
    # the test split is copied whole: the folder is a complete processed dir for train/evaluate
    assert len(pd.read_parquet(out / "test.parquet")) == 60
    assert json.loads((out / "retune_split.json").read_text())["train"]["replay"] == 60
    # fixed seed: the same replay rows every time; another fraction gives another count
    again = retune.build_retune_split(settings, ["batch-x.csv"], tmp_path / "again")
    assert again == {**report, "out_dir": str(tmp_path / "again")}
    pd.testing.assert_frame_equal(train, pd.read_parquet(tmp_path / "again" / "train.parquet"))
    none = retune.build_retune_split(monitor_settings(tmp_path, replay_fraction=0.0), ["batch-x.csv"], tmp_path / "n")
    assert none["train"]["rows"] == 60 and none["train"]["replay"] == 0


def test_build_retune_split_val_without_new_rows_keeps_old_val(tmp_path):
    settings = monitor_settings(tmp_path)
    _write_processed(settings, {"train": (30, 10), "val": (12, 0), "test": (5, 0)})
    report = retune.build_retune_split(settings, ["batch-x.csv"], tmp_path / "r")
    assert report["val"] == {"rows": 12, "new": 0, "replay": 12, "old_available": 12}


def test_build_retune_split_without_new_train_rows_says_why(tmp_path):
    settings = monitor_settings(tmp_path)
    _write_processed(settings, {"train": (30, 0), "val": (5, 5), "test": (5, 0)})
    with pytest.raises(ReviewOpsError, match="quarantined, deduplicated"):
        retune.build_retune_split(settings, ["batch-x.csv"], tmp_path / "r")


# --------------------------------------------------------------------------- forgetting


def test_forgetting_report_scores_old_and_new_test_rows(tmp_path):
    settings = monitor_settings(tmp_path)
    test = pd.concat([_processed(6, "reviews_base.csv"), _processed(3, "batch-x.csv")], ignore_index=True)
    Path(settings.paths.processed_dir).mkdir(parents=True)
    test.to_parquet(Path(settings.paths.processed_dir) / "test.parquet", index=False)
    # old rows all right, new rows all wrong
    pred_label = [
        lab if src != "batch-x.csv" else "neutral" if lab != "neutral" else "positive"
        for lab, src in zip(test["label"], test["source_file"], strict=True)
    ]
    preds = [
        {"review_id": r, "reference": s, "prediction": s, "label": lab, "pred_label": p}
        for r, s, lab, p in zip(test["review_id"], test["summary"], test["label"], pred_label, strict=True)
    ]
    eval_json = Path(settings.paths.reports_dir) / "eval.json"
    eval_json.parent.mkdir(parents=True)
    eval_json.write_text(
        json.dumps(
            {"eval/rougeL": 1.0, "eval/sentiment_macro_f1": 0.6, "champion/eval/rougeL": 0.5, "predictions": preds}
        )
    )
    out = retune.forgetting_report(settings, ["batch-x.csv"], log_mlflow=False)
    assert out["eval_old/n"] == 6 and out["eval_new/n"] == 3
    assert out["eval_old/sentiment_macro_f1"] == 1.0 and out["eval_new/sentiment_macro_f1"] == 0.0
    assert out["eval_old/rougeL"] == pytest.approx(1.0)
    assert out["eval_all/sentiment_macro_f1"] == 0.6 and out["champion_all/rougeL"] == 0.5
    # predictions of another test split are refused
    test.iloc[:5].to_parquet(Path(settings.paths.processed_dir) / "test.parquet", index=False)
    with pytest.raises(ReviewOpsError, match="re-run evaluation"):
        retune.forgetting_report(settings, ["batch-x.csv"], log_mlflow=False)


def test_retune_settings_without_champion_keeps_base_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    settings = monitor_settings(tmp_path, retune_profile="quick")
    tuned, info = retune.retune_settings(settings, tmp_path / "split")
    assert tuned.train.profile == "quick" and tuned.paths.processed_dir == tmp_path / "split"
    assert tuned.summarizer.model == settings.summarizer.model
    assert info["summarizer"]["start"] == info["sentiment"]["start"] == "base"
    assert tuned.evaluate.untuned_baseline == settings.evaluate.untuned_baseline


def test_retune_from_a_champion_does_not_score_it_twice(tmp_path, monkeypatch):
    """Starting from the champion summarizer, the "untuned base" is the champion: evaluation skips it."""
    from types import SimpleNamespace

    from reviewops.registry import registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    settings = monitor_settings(tmp_path, retune_profile="quick")
    assert settings.evaluate.untuned_baseline
    monkeypatch.setattr(registry, "get_alias_version", lambda name, alias: SimpleNamespace(version=7))
    monkeypatch.setattr(registry, "champion_dir", lambda name: tmp_path / name)
    tuned, info = retune.retune_settings(settings, tmp_path / "split")
    assert info["summarizer"]["start"] == "champion" and info["summarizer"]["version"] == "7"
    assert tuned.summarizer.model == str(tmp_path / settings.gate.summarizer_name)
    assert tuned.evaluate.untuned_baseline is False
