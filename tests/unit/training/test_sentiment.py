"""Sentiment fine-tuning: class weights, saved labels, summaries as extra rows, neutral-class aids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewops.schema import LABELS
from reviewops.training.neutral import (
    class_weights,
    fit_class_bias,
    fold_class_bias,
    macro_f1_of,
    neutral_knobs,
    ordinal_costs,
    sentiment_loss,
    star_target_ids,
    star_target_matrix,
)
from reviewops.training.sentiment import train_sentiment
from tests.unit.training.helpers import quick_settings, synthetic_processed


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


def test_head_tail_truncation_is_recorded_and_read_back_by_the_classifier(
    tmp_path: Path, tiny: dict[str, Path]
) -> None:
    """A model trained with head_tail is served with head_tail, whatever the serving settings say."""
    from reviewops.config import SentimentConfig
    from reviewops.models.sentiment import SentimentClassifier
    from reviewops.models.tokens import encode_texts

    df = synthetic_processed(40)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], sentiment_max_steps=1)
    settings = settings.model_copy(
        update={"sentiment": settings.sentiment.model_copy(update={"truncation": "head_tail", "max_length": 16})}
    )
    result = train_sentiment(settings, df, df[32:], tmp_path / "out", resume=False)
    config = json.loads((Path(result.model_dir) / "config.json").read_text())
    assert config["reviewops_truncation"] == "head_tail"
    clf = SentimentClassifier.load(result.model_dir, SentimentConfig(max_length=16))  # settings say "head"
    assert clf.truncation == "head_tail"
    long = "it started well " * 20 + "but in the end I would never buy it again"
    head_only = SentimentClassifier(clf.model, clf.tokenizer, clf.cfg)
    head_only.truncation = "head"
    ids_tail = encode_texts(clf.tokenizer, [long], 16, "head_tail")["input_ids"][0]
    ids_head = encode_texts(clf.tokenizer, [long], 16, "head")["input_ids"][0]
    assert ids_tail != ids_head  # the two readings differ, and the classifier uses the recorded one:
    import torch

    with torch.no_grad():
        want = torch.softmax(clf.model(input_ids=torch.tensor([ids_tail])).logits, -1)[0, clf._order].numpy()
    np.testing.assert_allclose(clf.predict_proba([long])[0], want, atol=1e-5)


def test_class_weights_are_balanced() -> None:
    weights = class_weights([0, 0, 0, 0, 1, 2, 2, 2])
    np.testing.assert_allclose(weights, [8 / 12, 8 / 3, 8 / 9])
    assert class_weights([2, 2])[0] == 1.0  # absent classes keep weight 1


def test_fit_class_bias_raises_an_underpredicted_class_and_keeps_zero_without_gain() -> None:
    # Neutral rows (label 1) whose neutral logit sits 0.6 below the winner: argmax never says neutral.
    logits = np.array([[2.0, 1.4, 0.0]] * 4 + [[0.0, 1.4, 2.0]] * 4 + [[3.0, 0.0, 0.0]] * 4 + [[0.0, 0.0, 3.0]] * 4)
    labels = np.array([1] * 8 + [0] * 4 + [2] * 4)
    assert macro_f1_of(labels, logits.argmax(axis=1)) < 0.5
    bias = fit_class_bias(logits, labels)
    assert bias[2] == 0.0 and bias[1] > 0.6  # positive is the reference; neutral must gain > 0.6
    assert macro_f1_of(labels, (logits + bias).argmax(axis=1)) == 1.0
    # The smallest move that gets there wins: +0.75 on neutral, nothing on negative.
    np.testing.assert_allclose(bias, [0.0, 0.75, 0.0])
    perfect = np.eye(3)[labels] * 2.0
    np.testing.assert_allclose(fit_class_bias(perfect, labels), [0.0, 0.0, 0.0])


def test_ordinal_loss_charges_the_far_class_twice_a_neighbour() -> None:
    import torch

    costs = torch.tensor(ordinal_costs())
    np.testing.assert_allclose(costs.numpy(), [[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    labels = torch.tensor([0])  # a negative review
    to_neutral = torch.tensor([[0.0, 5.0, 0.0]])
    to_positive = torch.tensor([[0.0, 0.0, 5.0]])
    ce = torch.nn.functional.cross_entropy
    assert ce(to_neutral, labels).item() == pytest.approx(ce(to_positive, labels).item())  # CE cannot tell
    near = sentiment_loss(to_neutral, labels, costs=costs).item()
    far = sentiment_loss(to_positive, labels, costs=costs).item()
    p = torch.softmax(to_neutral, dim=-1)[0]
    assert near == pytest.approx(ce(to_neutral, labels).item() + p[1].item() + 2 * p[2].item())
    assert far - near == pytest.approx(p[1].item() - p[2].item(), abs=1e-5)  # the far mistake costs ~1 more
    weight = torch.tensor([1.0, 4.0, 1.0])
    both = torch.tensor([0, 1])
    two = torch.tensor([[0.0, 5.0, 0.0], [0.0, 5.0, 0.0]])
    weighted = sentiment_loss(two, both, weight, costs=costs).item()
    expected_cost = (1.0 * (p[1] + 2 * p[2]) + 4.0 * (p[0] + p[2])).item() / 5.0
    assert weighted == pytest.approx(ce(two, both, weight=weight).item() + expected_cost, rel=1e-5)
    smoothed = sentiment_loss(to_neutral, labels, smoothing=0.1).item()
    assert smoothed == pytest.approx(ce(to_neutral, labels, label_smoothing=0.1).item())


def test_neutral_knobs_default_to_the_old_recipe_and_refuse_bad_values() -> None:
    from types import SimpleNamespace

    from reviewops.errors import ReviewOpsError

    assert neutral_knobs(SimpleNamespace()) == (0.0, "ce", False)
    assert neutral_knobs(SimpleNamespace(label_smoothing=0.1, loss="ordinal", tune_thresholds=True)) == (
        0.1,
        "ordinal",
        True,
    )
    with pytest.raises(ReviewOpsError, match="sentiment.loss"):
        neutral_knobs(SimpleNamespace(loss="focal"))
    with pytest.raises(ReviewOpsError, match="sentiment.label_smoothing"):
        neutral_knobs(SimpleNamespace(label_smoothing=1.0))


def _with_knobs(settings, **knobs):  # noqa: ANN001, ANN202
    """``settings`` with sentiment knobs config.py may not declare yet (training reads them with getattr)."""
    return settings.model_copy(update={"sentiment": settings.sentiment.model_copy(update=knobs)})


def _unbiased_twin(model_dir: str, bias: np.ndarray, cfg):  # noqa: ANN001, ANN202
    """The saved classifier with ``bias`` taken back out of its output layer."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from reviewops.models.sentiment import POOLING_ATTR, SentimentClassifier, apply_pooling

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    apply_pooling(model, getattr(model.config, POOLING_ATTR))
    with torch.no_grad():
        model.classifier.bias.sub_(torch.tensor(bias, dtype=torch.float32))
    return SentimentClassifier(model.eval(), SentimentClassifier.load(model_dir, cfg).tokenizer, cfg)


def _assert_shifted_by(got: np.ndarray, base: np.ndarray, bias: np.ndarray) -> None:
    """log softmax(z + b) - log softmax(z) = b - (a per-row constant)."""
    shift = got - base - bias
    np.testing.assert_allclose(shift - shift[:, :1], 0.0, atol=1e-4)


def test_fold_class_bias_travels_with_the_saved_model(tmp_path: Path, tiny: dict[str, Path]) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from reviewops.config import SentimentConfig
    from reviewops.models.sentiment import SentimentClassifier, apply_pooling

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny["encoder"]), num_labels=3)
    apply_pooling(model, "mean")
    bias = np.array([0.5, 1.25, 0.0])
    fold_class_bias(model, bias)
    model.save_pretrained(tmp_path / "m")
    AutoTokenizer.from_pretrained(str(tiny["encoder"])).save_pretrained(tmp_path / "m")
    cfg = SentimentConfig(max_length=32)
    texts = synthetic_processed(12)["text"].tolist()
    got = np.log(SentimentClassifier.load(tmp_path / "m", cfg).predict_proba(texts))
    _assert_shifted_by(got, np.log(_unbiased_twin(str(tmp_path / "m"), bias, cfg).predict_proba(texts)), bias)


def test_tuned_thresholds_are_folded_into_the_saved_head(tmp_path: Path, tiny: dict[str, Path]) -> None:
    """Training with tune_thresholds saves the fitted biases in the head (predict_proba unchanged)."""
    from reviewops.models.sentiment import SentimentClassifier

    df = synthetic_processed(40)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], sentiment_max_steps=2)
    plain = train_sentiment(settings, df, df[24:], tmp_path / "plain", resume=False)
    assert "train/threshold_bias_neutral" not in plain.metrics  # off by default
    tuned_settings = _with_knobs(settings, tune_thresholds=True, label_smoothing=0.1, loss="ordinal")
    tuned = train_sentiment(tuned_settings, df, df[24:], tmp_path / "tuned", resume=False)
    bias = np.array([tuned.metrics[f"train/threshold_bias_{label}"] for label in LABELS])
    assert bias[2] == 0.0 and set(bias) <= set(np.round(np.arange(-2.0, 3.001, 0.25), 2))
    assert tuned.metrics["train/threshold_val_macro_f1_after"] >= tuned.metrics["train/threshold_val_macro_f1_before"]
    config = json.loads((Path(tuned.model_dir) / "config.json").read_text())
    assert config["reviewops_class_bias"] == dict(zip(LABELS, bias.tolist(), strict=True))
    texts = df["text"].tolist()[:12]
    got = np.log(SentimentClassifier.load(tuned.model_dir, tuned_settings.sentiment).predict_proba(texts))
    base = np.log(_unbiased_twin(tuned.model_dir, bias, tuned_settings.sentiment).predict_proba(texts))
    _assert_shifted_by(got, base, bias)


def test_frozen_word_embeddings_stay_as_loaded(tmp_path: Path, tiny: dict[str, Path]) -> None:
    """sentiment.freeze_word_embeddings: the matrix is saved unchanged, the rest of the encoder trains."""
    from safetensors.torch import load_file

    df = synthetic_processed(40)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], sentiment_max_steps=2)
    settings = settings.model_copy(
        update={"sentiment": settings.sentiment.model_copy(update={"freeze_word_embeddings": True})}
    )
    result = train_sentiment(settings, df, df[32:], tmp_path / "out", resume=False)
    before = load_file(str(tiny["encoder"] / "model.safetensors"))
    after = load_file(str(Path(result.model_dir) / "model.safetensors"))
    (word,) = [k for k in after if k.endswith("word_embeddings.weight")]
    (base_word,) = [k for k in before if k.endswith("word_embeddings.weight")]
    assert (after[word] == before[base_word]).all()
    moved = [k for k in after if k.endswith("attention.self.query.weight")]
    assert moved and any(not (after[k] == before[k]).all() for k in moved if k in before)


def test_checkpoint_last_trains_every_step_and_keeps_the_final_weights(tmp_path: Path, tiny: dict[str, Path]) -> None:
    """``sentiment.checkpoint: last``: no early stopping, no best-checkpoint reload, last eval reported."""
    import torch
    from transformers import AutoModelForSequenceClassification

    df = synthetic_processed(40)
    settings = quick_settings(
        tmp_path, tiny["causal"], tiny["encoder"], sentiment_max_steps=6, sentiment_eval_steps=1, sentiment_patience=1
    )
    settings = settings.model_copy(
        update={"sentiment": settings.sentiment.model_copy(update={"checkpoint": "last", "pooling": "mean"})}
    )
    result = train_sentiment(settings, df, df[32:], tmp_path / "out", resume=False)
    assert result.global_step == 6  # patience 1 on a 6-step run would have stopped it on the first non-gain
    evals = [h for h in result.log_history if "eval_macro_f1" in h]
    assert [h["step"] for h in evals] == [1, 2, 3, 4, 5, 6]
    assert result.metrics["eval/macro_f1"] == pytest.approx(evals[-1]["eval_macro_f1"])
    assert result.metrics["eval/loss"] == pytest.approx(evals[-1]["eval_loss"])
    # the saved weights are step 6's: equal to the last checkpoint's, whatever validation said
    saved = AutoModelForSequenceClassification.from_pretrained(result.model_dir)
    step6 = AutoModelForSequenceClassification.from_pretrained(
        tmp_path / "out" / "checkpoints" / "sentiment" / "checkpoint-6"
    )
    for (name, a), b in zip(saved.state_dict().items(), step6.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_evaluation_cadence_does_not_change_the_trained_weights(tmp_path: Path, tiny: dict[str, Path]) -> None:
    """Evaluating every step or only at the end: the same final weights (evaluation draws no random state).

    Each evaluation's DataLoader drew a seed from torch's global generator, which moved every later
    dropout mask: the tiny encoder has dropout 0.1, so a leaked draw shows as different weights.
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    df = synthetic_processed(40)
    saved = []
    for every in (1, 6):
        base = tmp_path / f"every{every}"
        knobs = {"sentiment_max_steps": 6, "sentiment_eval_steps": every}
        settings = quick_settings(base, tiny["causal"], tiny["encoder"], **knobs)
        last = settings.sentiment.model_copy(update={"checkpoint": "last"})
        settings = settings.model_copy(update={"sentiment": last})
        result = train_sentiment(settings, df, df[32:], base / "out", resume=False)
        assert len([h for h in result.log_history if "eval_macro_f1" in h]) == 6 // every
        saved.append(AutoModelForSequenceClassification.from_pretrained(result.model_dir).state_dict())
    assert saved[0].keys() == saved[1].keys()
    for name in saved[0]:
        assert torch.equal(saved[0][name], saved[1][name]), name


def test_checkpoint_policy_defaults_to_last_and_refuses_other_values() -> None:
    from pydantic import ValidationError

    from reviewops.config import SentimentConfig, load_settings
    from reviewops.training.sentiment import checkpoint_policy

    assert SentimentConfig().checkpoint == "last" == load_settings("params.yaml").sentiment.checkpoint
    assert checkpoint_policy(object()) == "best"  # duck-typed configs from before the knob: as they trained
    with pytest.raises(ValidationError):
        SentimentConfig(checkpoint="latest")


def test_star_targets_move_two_and_four_star_reviews_toward_neutral() -> None:
    labels = np.array([0, 0, 1, 2, 2, 2, 0])  # the last: a 4-star review labelled negative by hand
    stars = [1, 2, 3, 4, 5, None, 4]
    np.testing.assert_array_equal(star_target_ids(labels, stars, 0.3), [0, 3, 1, 4, 2, 2, 0])
    np.testing.assert_array_equal(star_target_ids(labels, stars, 0.0), labels)  # off: untouched
    np.testing.assert_array_equal(star_target_ids(labels, None, 0.3), labels)  # no rating column
    matrix = star_target_matrix(0.3)
    np.testing.assert_allclose(matrix[:3], np.eye(3))
    np.testing.assert_allclose(matrix[3], [0.7, 0.3, 0.0])  # 2 stars: mostly negative
    np.testing.assert_allclose(matrix[4], [0.0, 0.3, 0.7])  # 4 stars: mostly positive
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)


def test_soft_target_loss_equals_weighted_ce_on_one_hot_rows_and_pulls_toward_neutral() -> None:
    import torch

    targets = torch.tensor(star_target_matrix(0.3))
    weight = torch.tensor([2.0, 5.0, 0.5])
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.3, -0.2], [-1.0, 0.0, 3.0]])
    hard = torch.tensor([0, 1, 2])
    ce = torch.nn.functional.cross_entropy(logits, hard, weight=weight).item()
    assert sentiment_loss(logits, hard, weight, targets=targets).item() == pytest.approx(ce, rel=1e-6)
    costs = torch.tensor(ordinal_costs())
    with_costs = sentiment_loss(logits, hard, weight, costs=costs).item()
    assert sentiment_loss(logits, hard, weight, costs=costs, targets=targets).item() == pytest.approx(with_costs)
    # A 4-star review (target id 4): the loss is lower for a prediction with some neutral mass than
    # for the same positive logit with none, where one-hot cross-entropy says the opposite.
    confident, hedged = torch.tensor([[-4.0, -4.0, 4.0]]), torch.tensor([[-4.0, 2.5, 4.0]])
    four_star, positive = torch.tensor([4]), torch.tensor([2])
    assert sentiment_loss(hedged, four_star, targets=targets) < sentiment_loss(confident, four_star, targets=targets)
    assert sentiment_loss(hedged, positive) > sentiment_loss(confident, positive)
    # Its class weight is the positive class's: the weighted mean over one row is the row's loss.
    one = -(targets[4] * hedged.log_softmax(-1)).sum()
    assert sentiment_loss(hedged, four_star, weight, targets=targets).item() == pytest.approx(one.item(), rel=1e-6)


def test_star_neutral_mass_trains_on_soft_targets_and_says_how_many(tmp_path: Path, tiny: dict[str, Path]) -> None:
    df = synthetic_processed(40)
    positive = df.index[df.label == "positive"]
    df.loc[positive[::2], "rating"] = 4.0  # every other positive review has 4 stars
    n_four = len(positive[::2])
    settings = _with_knobs(
        quick_settings(tmp_path, tiny["causal"], tiny["encoder"], sentiment_max_steps=2), star_neutral_mass=0.3
    )
    result = train_sentiment(settings, df, df[32:], tmp_path / "out", resume=False)
    assert result.metrics["train/star_soft_rows"] == n_four
    assert result.n_train == len(df)
    off = train_sentiment(_with_knobs(settings, star_neutral_mass=0.0), df, df[32:], tmp_path / "off", resume=False)
    assert "train/star_soft_rows" not in off.metrics
