"""int8 with close calls scored again in fp32: which rows, whose probabilities, shared by threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reviewops.config import PathsConfig, SentimentConfig, Settings
from reviewops.models.onnx_sentiment import OnnxSentimentClassifier, onnx_cache_dir, runtime_classifier
from reviewops.models.recheck import RecheckedClassifier, top_two_margin
from reviewops.models.sentiment import SentimentClassifier
from tests.unit.models.test_sentiment_threads import N_THREADS, ROUNDS, _texts, mean_pooled_checkpoint, race

CFG = SentimentConfig(max_length=64)


@pytest.fixture(scope="module")
def mean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mean_pooled_checkpoint(tmp_path_factory.mktemp("recheck") / "encoder")


class _Answers:
    """A stand-in classifier with a fixed answer per text; records which texts each call asked about."""

    def __init__(self, answers: dict[str, list[float]]) -> None:
        self.answers = answers
        self.asked: list[list[str]] = []
        self.tokenizer, self.cfg = object(), CFG

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.asked.append(list(texts))
        return np.array([self.answers[t] for t in texts], dtype=np.float32).reshape(len(texts), 3)


def test_top_two_margin() -> None:
    proba = np.array([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.0, 0.0, 1.0], [0.1, 0.25, 0.65]], dtype=np.float32)
    np.testing.assert_allclose(top_two_margin(proba), [0.2, 0.0, 1.0, 0.4], atol=1e-7)
    assert top_two_margin(np.zeros((0, 3), dtype=np.float32)).shape == (0,)


def test_only_the_close_calls_are_asked_again_and_take_the_fp32_answer() -> None:
    fast = _Answers({"sure": [0.9, 0.05, 0.05], "close": [0.2, 0.45, 0.35], "tie": [0.1, 0.45, 0.45]})
    exact = _Answers({"close": [0.6, 0.3, 0.1], "tie": [0.1, 0.3, 0.6]})
    clf = RecheckedClassifier(fast, exact, margin=0.5)
    got = clf.predict_proba(["sure", "close", "tie", "sure"], batch_size=2)
    assert exact.asked == [["close", "tie"]]  # 0.1 and 0.0 are below 0.5; "sure" (0.85) is not
    np.testing.assert_array_equal(got, np.array([[0.9, 0.05, 0.05], *exact.answers.values(), [0.9, 0.05, 0.05]], "f"))
    assert clf.predict(["close", "tie", "sure"]) == ["negative", "positive", "negative"]
    assert (clf.inference, clf.runtime, clf.cfg) == ("int8", "torch", CFG)
    exact.asked.clear()
    assert clf.predict_proba([]).shape == (0, 3) and exact.asked == []  # nothing close: fp32 not called
    strict = RecheckedClassifier(fast, exact, margin=0.05)
    strict.predict_proba(["sure", "close", "tie"])
    assert exact.asked == [["tie"]]


@pytest.mark.parametrize("margin", [0.0, -0.1, 1.5])
def test_a_margin_outside_zero_to_one_is_refused(margin: float) -> None:
    with pytest.raises(ValueError, match="recheck margin must be in"):
        RecheckedClassifier(_Answers({}), _Answers({}), margin)
    with pytest.raises(ValueError):
        SentimentConfig(int8_recheck_margin=margin if margin else 2.0)


def test_on_a_real_model_rechecked_rows_are_fp32s_and_the_rest_int8s(mean_dir: Path) -> None:
    fp32 = SentimentClassifier.load(mean_dir, CFG)
    int8 = fp32.quantized()
    texts = [t for thread in range(6) for t in _texts(thread, n=16)]
    want32, want8 = fp32.predict_proba(texts, batch_size=8), int8.predict_proba(texts, batch_size=8)
    margin = float(np.median(top_two_margin(want8)))  # half the rows close, half not, whatever the random head
    clf = RecheckedClassifier(int8, fp32, margin)
    redo = clf.rechecked_rows(want8)
    assert 0 < len(redo) < len(texts) and set(redo) == set(np.flatnonzero(top_two_margin(want8) < margin))
    got = clf.predict_proba(texts, batch_size=8)
    keep = np.setdiff1d(np.arange(len(texts)), redo)
    np.testing.assert_array_equal(got[keep], want8[keep])
    np.testing.assert_allclose(got[redo], want32[redo], atol=1e-5, rtol=0)  # other batches: other padding


def test_threads_sharing_a_rechecked_classifier_get_the_sequential_answers(mean_dir: Path) -> None:
    fp32 = SentimentClassifier.load(mean_dir, CFG)
    int8 = fp32.quantized()
    margin = float(np.median(top_two_margin(int8.predict_proba(_texts(0) + _texts(1)))))
    differing, total = race(RecheckedClassifier(int8, fp32, margin))  # type: ignore[arg-type]
    assert total == N_THREADS * ROUNDS * 6 and differing == 0


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_runtime_classifier_rechecks_int8_on_the_same_runtime(runtime: str, mean_dir: Path, tmp_path: Path) -> None:
    def settings(**knobs: object) -> Settings:
        sentiment = SentimentConfig(max_length=64, runtime=runtime, inference="int8", **knobs)  # type: ignore[arg-type]
        return Settings(paths=PathsConfig(models_dir=tmp_path / "models"), sentiment=sentiment)

    clf = runtime_classifier(SentimentClassifier.load(mean_dir, CFG), settings())
    assert isinstance(clf, RecheckedClassifier) and clf.margin == 0.5 and clf.inference == "int8"
    assert clf.runtime == runtime and clf.exact.inference == "fp32" and clf.fast.inference == "int8"
    if runtime == "torch":  # one word-embedding table for the two models (quantize_int8 shares fp32 tensors)
        assert clf.fast.model.get_input_embeddings().weight is clf.exact.model.get_input_embeddings().weight
    if runtime == "onnx":
        assert isinstance(clf.exact, OnnxSentimentClassifier) and isinstance(clf.fast, OnnxSentimentClassifier)
        assert len(list(onnx_cache_dir(settings()).glob("*.onnx"))) == 2  # the int8 export and the fp32 one
    plain = runtime_classifier(SentimentClassifier.load(mean_dir, CFG), settings(int8_recheck_margin=0))
    assert not isinstance(plain, RecheckedClassifier) and plain.inference == "int8"
