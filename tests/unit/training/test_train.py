"""Training: both tiny models with the quick profile, MLflow tracking, pyfunc models, resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewops.config import Settings
from reviewops.models.summarizer import Summarizer
from reviewops.schema import LABEL2ID, LABELS
from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder, build_tiny_seq2seq
from reviewops.training.train import (
    class_weights,
    data_lineage,
    flatten,
    train_all,
    train_sentiment,
    train_summarizer,
)

ROOT = Path(__file__).resolve().parents[3]

_TEXTS = {
    "negative": ("Terrible taste, the package arrived broken.", "Bad", "太难吃了，包装也破了。", "很差"),
    "neutral": ("It is okay, nothing special for the price.", "Okay", "一般般，没什么特别的。", "一般"),
    "positive": ("Love it, great flavor and fast delivery!", "Great", "非常好吃，物流很快！", "很好"),
}


def synthetic_processed(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """A processed-split-shaped frame (docs/CONTRACTS.md), English and Chinese, all labels."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % 3]
        zh = i % 5 == 0
        en_text, en_sum, zh_text, zh_sum = _TEXTS[label]
        rows.append(
            {
                "review_id": f"r-{i:04d}",
                "product_id": f"P{i % 7}",
                "text": (zh_text if zh else en_text) + f" #{int(rng.integers(1000))}",
                "summary": zh_sum if zh else en_sum,
                "rating": {"negative": 1.0, "neutral": 3.0, "positive": 5.0}[label],
                "timestamp": "2024-01-01T00:00:00Z",
                "language": "zh" if zh else "en",
                "category": "food",
                "source_file": "synthetic.csv",
                "source_row": i + 1,
                "label": label,
                "label_id": LABEL2ID[label],
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-train")
    return {"causal": build_tiny_causal_lm(root / "causal"), "encoder": build_tiny_encoder(root / "encoder")}


def quick_settings(tmp_path: Path, summarizer: Path, encoder: Path, **profile: object) -> Settings:
    base = Settings()
    prof = base.train.profiles["quick"].model_copy(update=profile)
    return Settings(
        paths={"models_dir": str(tmp_path / "models"), "processed_dir": str(tmp_path / "processed")},
        summarizer={"model": str(summarizer), "max_new_tokens": 4},
        sentiment={"model": str(encoder), "max_length": 32},
        train={"profile": "quick", "profiles": {**base.train.profiles, "quick": prof}},
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated project dir: processed splits, a data.dvc, MLflow in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    processed = tmp_path / "processed"
    processed.mkdir()
    df = synthetic_processed(40)
    df.iloc[:32].to_parquet(processed / "train.parquet", index=False)
    df.iloc[32:].to_parquet(processed / "val.parquet", index=False)
    (tmp_path / "data.dvc").write_text("outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: data\n")
    return tmp_path


# ~8 s on an idle 2-core box (up to ~50 s when the box is shared): the end-to-end contract.
def test_train_all_tracks_params_lineage_losses_and_loadable_models(project: Path, tiny: dict[str, Path]) -> None:
    import mlflow

    settings = quick_settings(project, tiny["causal"], tiny["encoder"])
    result = train_all(settings, project / "processed", project / "out")

    client = mlflow.MlflowClient()
    parent = client.get_run(result["run_id"])
    params = parent.data.params
    assert params["summarizer.model"] == str(tiny["causal"])
    assert params["train.profile"] == "quick" and params["train.active.summarizer_max_steps"] == "4"
    assert params["data/dvc_md5"] == "0123456789abcdef0123456789abcdef.dir"
    train_sha = hashlib.sha256((project / "processed" / "train.parquet").read_bytes()).hexdigest()
    assert params["data/train_sha256"] == train_sha
    assert params["data/n_train_rows"] == "32"
    metrics = parent.data.metrics
    for key in (
        "train/summarizer_loss",
        "train/summarizer_eval_loss",
        "train/sentiment_loss",
        "train/sentiment_eval_loss",
        "train/sentiment_eval_macro_f1",
    ):
        assert np.isfinite(metrics[key]), key
    assert metrics["train/summarizer_global_step"] == 4 and metrics["train/sentiment_global_step"] == 6

    # Per-step curves live in the nested run of each model, namespaced.
    for name, steps in (("summarizer", 4), ("sentiment", 6)):
        child = result["child_run_ids"][name]
        assert client.get_run(child).data.tags["mlflow.parentRunId"] == result["run_id"]
        losses = client.get_metric_history(child, "train/loss")
        assert len(losses) >= 2 and all(np.isfinite(m.value) for m in losses)
        assert max(m.step for m in client.get_metric_history(child, "eval/loss")) == steps

    # Models: HF directories for evaluation/serving, and pyfunc URIs for the registry.
    assert (Path(result["model_dirs"]["summarizer"]) / "config.json").is_file()
    assert Summarizer.load(result["model_dirs"]["summarizer"], settings.summarizer).summarize(["好吃"])[0]
    texts = pd.DataFrame({"text": ["Love it, great flavor", "太难吃了"]})
    summaries = mlflow.pyfunc.load_model(result["model_uris"]["summarizer"]).predict(texts)
    assert list(summaries.columns) == ["summary"] and all(s.strip() for s in summaries["summary"])
    sentiment = mlflow.pyfunc.load_model(result["model_uris"]["sentiment"]).predict(texts)
    assert set(sentiment["label"]) <= set(LABELS)
    proba = sentiment[[f"proba_{label}" for label in LABELS]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # Artifacts stay beside the sqlite database, not in the working directory.
    assert (project / "mlartifacts").is_dir() and not (project / "mlruns").exists()


def test_summarizer_resumes_from_checkpoint(tmp_path: Path, tiny: dict[str, Path]) -> None:
    df = synthetic_processed(40)
    out = tmp_path / "out"
    first = train_summarizer(quick_settings(tmp_path, tiny["causal"], tiny["encoder"]), df[:32], df[32:], out)
    assert first.global_step == 4 and first.resumed_from is None
    assert (out / "checkpoints" / "summarizer" / "checkpoint-4").is_dir()

    longer = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], summarizer_max_steps=6)
    second = train_summarizer(longer, df[:32], df[32:], out)
    assert second.resumed_from is not None and second.resumed_from.endswith("checkpoint-4")
    assert second.global_step == 6
    # Only steps 5-6 ran in the second call: its history continues the first one's.
    assert [h["step"] for h in second.log_history if "loss" in h][0] <= 5
    assert len(list((out / "checkpoints" / "summarizer").glob("checkpoint-*"))) <= 2

    # New training data (a retrain after drift) must not continue the old run; nor may resume=False.
    other = synthetic_processed(40, seed=1)
    retrain = train_summarizer(longer, other[:32], other[32:], out)
    assert retrain.resumed_from is None and retrain.global_step == 6
    assert [p.name for p in (out / "checkpoints" / "summarizer").glob("checkpoint-*")] != []


def test_lora_summarizer_is_merged_before_saving(tmp_path: Path, tiny: dict[str, Path]) -> None:
    df = synthetic_processed(24)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], summarizer_max_steps=2, eval_steps=1)
    settings = settings.model_copy(
        update={"summarizer": settings.summarizer.model_copy(update={"lora": True, "lora_r": 4, "lora_alpha": 8})}
    )
    result = train_summarizer(settings, df[:16], df[16:], tmp_path / "out")
    saved = Path(result.model_dir)
    assert not (saved / "adapter_config.json").exists() and (saved / "model.safetensors").is_file()
    assert Summarizer.load(saved, settings.summarizer).summarize(["Love it"])[0].strip()


def test_causal_labels_mask_prompt_and_padding(tmp_path: Path, tiny: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    from reviewops.training.train import _summarizer_rows

    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"])
    tok = AutoTokenizer.from_pretrained(tiny["causal"])
    rows = _summarizer_rows(synthetic_processed(3), tok, settings, "causal")
    for row in rows:
        labels = row["labels"]
        n_prompt = sum(1 for x in labels if x == -100)
        assert n_prompt > 5 and all(x == -100 for x in labels[:n_prompt])
        assert labels[-1] == tok.eos_token_id and labels[n_prompt:] == row["input_ids"][n_prompt:]
        assert len(row["input_ids"]) == len(labels) == len(row["attention_mask"])


def test_seq2seq_summarizer_trains_and_loads(tmp_path: Path, tiny: dict[str, Path]) -> None:
    bart = build_tiny_seq2seq(tmp_path / "bart")
    df = synthetic_processed(24)
    settings = quick_settings(tmp_path, bart, tiny["encoder"], summarizer_max_steps=2, eval_steps=1)
    result = train_summarizer(settings, df[:16], df[16:], tmp_path / "out")
    assert result.global_step == 2 and np.isfinite(result.metrics["eval/loss"])
    out = Summarizer.load(result.model_dir, settings.summarizer)
    assert out.kind == "seq2seq" and out.summarize(["Love it"])[0].strip()


def test_sentiment_uses_class_weights_and_saves_labels(tmp_path: Path, tiny: dict[str, Path]) -> None:
    from transformers import AutoConfig

    df = synthetic_processed(40)
    skewed = pd.concat([df[df.label == "positive"]] * 3 + [df[df.label != "positive"]], ignore_index=True)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], sentiment_max_steps=2)
    result = train_sentiment(settings, skewed, df[32:], tmp_path / "out")
    assert result.metrics["train/class_weight_neutral"] > result.metrics["train/class_weight_positive"]
    config = AutoConfig.from_pretrained(result.model_dir)
    assert [config.id2label[i] for i in range(3)] == LABELS


def test_sentiment_can_also_train_on_summaries(tmp_path: Path, tiny: dict[str, Path]) -> None:
    df = synthetic_processed(40)
    df.loc[df.index[:5], "summary"] = ["", "  ", None, "Okay", "Bad"]
    n_summaries = int(df["summary"].astype("string").str.strip().fillna("").ne("").sum())
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], sentiment_max_steps=1)
    settings = settings.model_copy(
        update={"sentiment": settings.sentiment.model_copy(update={"augment_with_summaries": True, "pooling": "mean"})}
    )
    result = train_sentiment(settings, df, df[32:], tmp_path / "out", resume=False)
    assert result.n_train == len(df) + n_summaries  # every blank summary skipped, every other one added
    assert result.metrics["train/summary_rows_added"] == n_summaries
    config = json.loads((Path(result.model_dir) / "config.json").read_text())
    assert config["reviewops_pooling"] == "mean"  # recorded, so loading reads it the same way


def test_class_weights_are_balanced() -> None:
    weights = class_weights([0, 0, 0, 0, 1, 2, 2, 2])
    np.testing.assert_allclose(weights, [8 / 12, 8 / 3, 8 / 9])
    assert class_weights([2, 2])[0] == 1.0  # absent classes keep weight 1


def test_flatten_and_lineage(tmp_path: Path) -> None:
    flat = flatten(Settings().model_dump(mode="json"))
    assert flat["train.profiles.cpu.batch_size"] == "8" and flat["summarizer.kind"] == "auto"
    lineage = data_lineage(tmp_path, root=ROOT)
    if (ROOT / ".git").exists():
        assert len(lineage["git_commit"]) == 40
    assert "data/dvc_md5" not in data_lineage(tmp_path, root=tmp_path)


def test_train_cli_quick_json(project: Path, tiny: dict[str, Path]) -> None:
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    args = [
        "--set",
        f"sentiment.model={tiny['encoder']}",
        "--set",
        f"summarizer.model={tiny['causal']}",
        "--set",
        f"paths.models_dir={project / 'models'}",
        "--set",
        f"paths.reports_dir={project / 'reports'}",
        "train",
        "--profile",
        "quick",
        "--only",
        "sentiment",
        "--processed-dir",
        str(project / "processed"),
        "--out",
        str(project / "out"),
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # stdout holds only the result; progress goes to stderr
    assert payload["profile"] == "quick" and set(payload["model_uris"]) == {"sentiment"}
    assert payload["model_uris"]["sentiment"].startswith("models:/")
    assert payload["timings"]["sentiment_train_s"] > 0 and len(payload["run_id"]) == 32
    # The report that evaluate/gate read by default.
    report = json.loads((project / "reports" / "train.json").read_text())
    assert report["run_id"] == payload["run_id"] and report["model_uris"] == payload["model_uris"]
    assert Path(report["model_dirs"]["sentiment"]).is_dir()


def test_train_cli_missing_data_is_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--processed-dir", str(tmp_path / "nope"), "--json"])
    assert result.exit_code != 0
    assert "dvc repro split" in str(result.exception) or "dvc repro split" in result.output


def test_logged_models_carry_their_code_and_installable_requirements(project: Path, tiny: dict[str, Path]) -> None:
    import mlflow
    from packaging.requirements import Requirement

    settings = quick_settings(project, tiny["causal"], tiny["encoder"])
    with mlflow.start_run():
        from reviewops.models.pyfunc import log_sentiment

        info = log_sentiment(str(tiny["encoder"]), settings.sentiment)
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    reqs = [
        Requirement(line)
        for line in (local / "requirements.txt").read_text().split()
        if line and not line.startswith("-")
    ]
    pins = {r.name: str(r.specifier) for r in reqs}
    assert {"torch", "transformers", "mlflow", "pyyaml"} <= set(pins)
    assert not [s for s in pins.values() if "+" in s], pins  # pip cannot install a local "+cpu" build tag
    assert (local / "code" / "reviewops" / "models" / "pyfunc.py").is_file()
    assert (local / "code" / "reviewops" / "config.py").is_file()
