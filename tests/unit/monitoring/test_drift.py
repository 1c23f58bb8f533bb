"""Drift check: descriptors (en + zh), the pure decision, the trend alerts, and a small end-to-end run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from reviewops.config import DriftConfig, Settings
from reviewops.monitoring.drift import (
    _reference_descriptors,
    auc_noise_floor,
    build_vocab,
    compute_descriptors,
    decide_drift,
    embed,
    embed_cached,
    log_to_mlflow,
    run_drift,
    sentiment_trend,
)
from reviewops.text import char_length, detect_language, non_ascii_share, word_count

ZH_10 = "这个咖啡味道真的很好"  # ten ideographs


# ---------------------------------------------------------------- descriptors


def test_descriptors_count_english_and_chinese_correctly():
    df = pd.DataFrame({"text": ["Great taste, would buy again [EMAIL]", ZH_10, None]}, index=[7, 8, 9])
    vocab = {"great", "would", "buy", "again", "email", "这", "个", "咖", "啡", "味", "道"}
    d = compute_descriptors(df, vocab)
    assert list(d.index) == [7, 8, 9]
    en, zh, empty = d.loc[7], d.loc[8], d.loc[9]
    assert en.char_length == 36 and en.word_count == 6
    assert en.pii_mask_rate == pytest.approx(1 / 6)
    assert en.oov_rate == pytest.approx(1 / 6)  # "taste"
    assert en.non_ascii_share == 0 and en.detected_language == "en"
    assert zh.char_length == 10 and zh.word_count == 10
    assert zh.non_ascii_share == 1.0 and zh.detected_language == "zh"
    assert zh.oov_rate == pytest.approx(4 / 10)  # 真 的 很 好
    assert empty.char_length == 0 and empty.word_count == 0 and empty.oov_rate == 0


def test_descriptors_match_text_helpers_on_tricky_strings():
    texts = [
        "Ｇｒｅａｔ！ 很好",
        "Cafe\u0301 au lait",
        "混合 mixed 文本 text.",
        "  ",
        "don't STOP",
        "한국어 리뷰",
        "價格\u3000合理",
    ]
    d = compute_descriptors(pd.DataFrame({"text": texts}), vocab=None)
    assert d["char_length"].tolist() == [char_length(t) for t in texts]
    assert d["word_count"].tolist() == [word_count(t) for t in texts]
    assert d["non_ascii_share"].tolist() == pytest.approx([non_ascii_share(t) for t in texts])
    assert d["detected_language"].tolist() == [detect_language(t) for t in texts]
    assert d["oov_rate"].isna().all()  # no vocabulary given


def test_reference_oov_is_leave_one_out_and_vocab():
    texts = ["apple banana cherry", "apple banana", "apple banana zebra", "kiwi fig", "kiwi fig"]
    desc, vocab = _reference_descriptors(pd.DataFrame({"text": texts}))
    assert desc["oov_rate"].tolist() == pytest.approx([1 / 3, 0, 1 / 3, 0, 0])  # duplicates see each other
    assert vocab == build_vocab(texts) == {"apple", "banana", "cherry", "zebra", "kiwi", "fig"}


def test_embed_is_unit_norm_and_deterministic(tiny_encoder):
    vecs = embed(["good", ZH_10, "bad product, broke after a week"], tiny_encoder, batch_size=2)
    assert vecs.shape == (3, 32)
    assert np.linalg.norm(vecs, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    assert np.allclose(vecs, embed(["good", ZH_10, "bad product, broke after a week"], tiny_encoder))


def test_embed_cached_reuses_reference_embeddings(tiny_encoder, tmp_path, monkeypatch):
    texts = ["first review", ZH_10]
    first = embed_cached(texts, tiny_encoder, 8, tmp_path)
    assert len(list(tmp_path.glob("emb-*.npy"))) == 1
    monkeypatch.setattr("reviewops.monitoring.drift.embed", lambda *a, **k: pytest.fail("cache miss"))
    assert np.array_equal(embed_cached(texts, tiny_encoder, 8, tmp_path), first)


# ---------------------------------------------------------------- decision (pure)


def _summary(**over):
    base = {
        "share_drifted": 0.1,
        "n_drifted": 1,
        "n_columns": 10,
        "embedding": {"score": 0.52, "noise_floor": 0.53},
        "columns": {"label": {"score": 0.02}, "language": {"score": 0.01}, "category": {"score": 0.03}},
        "trend": {"alerts": []},
    }
    base.update(over)
    return base


def test_decide_drift_clean_batch():
    decision = decide_drift(_summary(), DriftConfig())
    assert not decision.drifted and decision.fired == []
    signals = {s.name: s for s in decision.signals}
    assert signals["share_drifted"].threshold == 0.3 and signals["share_drifted"].score == 0.1
    assert signals["embedding"].threshold == 0.55  # floor 0.53 is below the configured threshold
    assert signals["prediction_shift"].score is None and not signals["prediction_shift"].fired
    assert decision.reason == "no drift signal fired"


def test_decide_drift_fires_each_signal_against_its_threshold():
    summary = _summary(
        share_drifted=0.5,
        embedding={"score": 0.7, "noise_floor": 0.53},
        columns={
            "label": {"score": 0.25},
            "language": {"score": 0.3},
            "category": {"score": 0.05},
            "pred_sentiment": {"score": 0.2},
        },
        trend={"alerts": [{"product_id": "P1"}]},
    )
    decision = decide_drift(summary, DriftConfig())
    assert decision.drifted
    assert decision.fired == ["share_drifted", "embedding", "label_shift", "prediction_shift", "language_shift"]
    assert len(decision.alerts) == 1 and decision.to_dict()["trend_alerts"] == 1
    strict = decide_drift(
        summary,
        DriftConfig(
            share_drifted_threshold=0.6, label_shift_threshold=0.3, segment_shift_threshold=0.5, embedding_threshold=0.8
        ),
    )
    assert not strict.drifted


def test_embedding_threshold_rises_to_chance_level_for_small_samples():
    assert auc_noise_floor(2000, 2000) < 0.55 < auc_noise_floor(200, 200)
    small = decide_drift(_summary(embedding={"score": 0.58, "noise_floor": auc_noise_floor(200, 200)}), DriftConfig())
    assert not small.drifted
    emb = next(s for s in small.signals if s.name == "embedding")
    assert emb.threshold == pytest.approx(auc_noise_floor(200, 200))


# ---------------------------------------------------------------- sentiment trend


def test_sentiment_trend_alerts_on_jump_with_enough_reviews():
    rows = []
    for product, n, neg_before, neg_after in (("P1", 30, 3, 15), ("P2", 5, 0, 5), ("P3", 30, 6, 9)):
        for week, negs in (("2024-03-04", neg_before), ("2024-03-11", neg_after)):
            for i in range(n):
                rows.append(
                    {
                        "product_id": product,
                        "timestamp": f"{week}T10:00:{i % 60:02d}Z",
                        "label": "negative" if i < negs else "positive",
                    }
                )
    trend, alerts = sentiment_trend(pd.DataFrame(rows), "W", threshold=0.15, min_count=20)
    by_product = {a["product_id"]: a for a in alerts}
    assert set(by_product) == {"P1", "__all__"}  # P2 jumps 100% on 5 reviews: noise; P3 only +10%
    assert by_product["P1"]["period"] == "2024-03-11" and by_product["P1"]["change"] == pytest.approx(0.4)
    assert by_product["__all__"]["change"] == pytest.approx(29 / 65 - 9 / 65)
    overall = trend[trend["product_id"] == "__all__"].set_index("period")
    assert overall.loc["2024-03-04", "count"] == 65
    assert overall.loc["2024-03-11", "negative_share"] == pytest.approx(29 / 65)
    p3 = trend[trend["product_id"] == "P3"]["change"].dropna()
    assert p3.tolist() == pytest.approx([0.1])


def test_sentiment_trend_falls_back_to_ratings():
    df = pd.DataFrame(
        {
            "product_id": ["A"] * 4,
            "rating": [1, 5, 2, np.nan],
            "timestamp": ["2024-01-01T00:00:00Z"] * 3 + ["not a date"],
        }
    )
    trend, alerts = sentiment_trend(df)
    assert trend[trend["product_id"] == "A"]["negative_share"].tolist() == pytest.approx([2 / 3])
    assert alerts == []


# ---------------------------------------------------------------- end to end (small)


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    from reviewops.testing.tiny import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


def _processed(rows: int, seed: int, scenario: str = "base") -> pd.DataFrame:
    from reviewops.data.clean import preprocess
    from reviewops.data.generate import generate_reviews

    raw = generate_reviews(rows, seed, scenario)
    raw = raw[raw["rating"].between(1, 5) & raw["language"].isin(["en", "zh"])]
    return preprocess(raw, Settings().preprocess).clean


@pytest.fixture(scope="module")
def drift_runs(tmp_path_factory, tiny_encoder):
    root = tmp_path_factory.mktemp("drift")
    settings = Settings.model_validate(
        {
            "paths": {"reports_dir": str(root / "reports")},
            "drift": {"sample_size": 150, "embedding_model": str(tiny_encoder)},
        }
    )
    ref = _processed(320, 1)
    base = _processed(320, 2)
    shifted = _processed(320, 3, "language_sentiment_shift")

    def predict(texts):  # a stand-in champion: the shift shows up in its predictions too
        return ["negative" if any(w in t for w in ("差", "失望", "terrible", "broke")) else "positive" for t in texts]

    runs = {
        "base": run_drift(ref, base, settings, name="base", track=False),
        "shifted": run_drift(
            ref,
            shifted,
            settings,
            name="shifted",
            track=False,
            predict_fn=predict,
            summarize_len_fn=lambda texts: [t[:20] for t in texts],
        ),
    }
    return root, settings, runs, (ref, shifted)


def test_run_drift_base_vs_base_is_not_drifted(drift_runs):
    _, _, runs, _ = drift_runs
    result = runs["base"]
    assert not result.drifted, result.decision.reason
    assert result.summary["share_drifted"] < 0.3
    assert result.summary["columns"]["language"]["score"] < 0.1


def test_run_drift_shifted_batch_is_drifted(drift_runs):
    _, _, runs, _ = drift_runs
    s = runs["shifted"].summary
    assert runs["shifted"].drifted
    assert {"share_drifted", "language_shift", "label_shift"} <= set(runs["shifted"].decision.fired)
    assert s["distributions"]["language"]["current"]["zh"] > s["distributions"]["language"]["reference"]["zh"]
    assert s["descriptors"]["non_ascii_share"]["current_mean"] > s["descriptors"]["non_ascii_share"]["reference_mean"]
    # predictions ran on the sample and entered the report
    assert {"pred_sentiment", "pred_summary_len"} <= set(s["columns"])
    assert s["columns"]["pred_summary_len"]["scope"] == "sample"
    assert s["embedding"]["score"] is not None and s["embedding"]["dim"] == 32


def test_run_drift_writes_html_json_and_workspace(drift_runs):
    from evidently.ui.workspace import Workspace

    root, _, runs, _ = drift_runs
    result = runs["shifted"]
    assert result.html_path == root / "reports" / "drift" / "shifted.html"
    page = result.html_path.read_text(encoding="utf-8")
    assert "sampled 150 of" in page and "with seed 42" in page and "Sentiment trend" in page
    saved = json.loads(result.json_path.read_text(encoding="utf-8"))
    assert saved["decision"]["drifted"] is True
    assert saved["sampling"]["note"].startswith("sampled 150 of")
    assert saved["trend"]["rows"] and all(
        not (isinstance(v, float) and math.isnan(v)) for row in saved["trend"]["rows"] for v in row.values()
    )
    ws = Workspace(str(root / "reports" / "evidently_workspace"))
    projects = ws.search_project("reviewops-drift")
    assert len(projects) == 1  # created once, reused by the second run
    assert len(ws.list_runs(projects[0].id)) == 4  # two runs x (all rows, sample)


def test_log_to_mlflow_namespaces_metrics(drift_runs, tmp_path, monkeypatch):
    import mlflow

    _, settings, runs, _ = drift_runs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = runs["shifted"]
    run_id = log_to_mlflow(result.summary, result.html_path, settings)
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.data.metrics["drift/drifted"] == 1.0
    assert run.data.metrics["drift/share_drifted"] == pytest.approx(result.summary["share_drifted"])
    assert "drift/column/language" in run.data.metrics
    assert run.data.tags["drift.sampling"].startswith("sampled 150 of")
    names = [a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "drift")]
    assert "drift/shifted.html" in names


def test_cli_drift_fail_on_drift_exit_code(drift_runs, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    _, _, _, (ref, shifted) = drift_runs
    ref.to_parquet(tmp_path / "ref.parquet")
    shifted.to_parquet(tmp_path / "cur.parquet")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = [
        "--set",
        f"drift.embedding_model={drift_runs[1].drift.embedding_model}",
        "--set",
        "drift.sample_size=100",
        "drift",
        "--current",
        "cur.parquet",
        "--reference",
        "ref.parquet",
        "--name",
        "cli",
        "--json",
    ]
    res = CliRunner().invoke(app, [*args, "--fail-on-drift"])
    assert res.exit_code == 3, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["drifted"] is True and out["html"].endswith("cli.html")
    assert (tmp_path / "reports" / "drift" / "cli.json").exists()
    assert CliRunner().invoke(app, args).exit_code == 0
