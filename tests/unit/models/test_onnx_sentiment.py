"""The sentiment classifier through ONNX Runtime: torch's probabilities, a reused export, shared by threads."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from reviewops.config import PathsConfig, SentimentConfig, Settings
from reviewops.errors import ReviewOpsError
from reviewops.models import onnx_sentiment
from reviewops.models.onnx_sentiment import OnnxSentimentClassifier, onnx_cache_dir, runtime_classifier
from reviewops.models.recheck import RecheckedClassifier
from reviewops.models.sentiment import POOLING_ATTR, SentimentClassifier
from reviewops.testing.tiny import build_tiny_encoder
from tests.unit.models.test_sentiment_threads import N_THREADS, ROUNDS, _texts, mean_pooled_checkpoint, race

CFG = SentimentConfig(max_length=64)


@pytest.fixture(scope="module")
def mean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mean_pooled_checkpoint(tmp_path_factory.mktemp("onnx") / "encoder")


@pytest.fixture(scope="module")
def cls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("onnx-cls") / "encoder")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def _corpus() -> list[str]:
    return [text for thread in range(6) for text in _texts(thread, n=16)] + ["", "a"]  # 98 texts of 0-60 words


def _sharpened(clf: SentimentClassifier, factor: float = 200.0) -> SentimentClassifier:
    """The random tiny head gives near-uniform probabilities; a scaled head makes argmax margins real."""
    import torch

    with torch.no_grad():
        clf.model.classifier.weight.mul_(factor)
    return clf


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_onnx_fp32_gives_torchs_probabilities(pooling: str, mean_dir: Path, cls_dir: Path, cache: Path) -> None:
    torch_clf = SentimentClassifier.load(mean_dir if pooling == "mean" else cls_dir, CFG)
    assert getattr(torch_clf.model.config, POOLING_ATTR) == pooling
    clf = OnnxSentimentClassifier.from_classifier(torch_clf, cache_dir=cache)
    assert (clf.runtime, clf.inference) == ("onnx", "fp32")
    texts = _corpus()
    for batch_size in (1, 5, 32):
        want = torch_clf.predict_proba(texts, batch_size=batch_size)
        got = clf.predict_proba(texts, batch_size=batch_size)
        assert got.shape == (98, 3) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert clf.predict(texts) == torch_clf.predict(texts)
    assert clf.predict_proba([]).shape == (0, 3)
    torch_clf.truncation = "head_tail"  # as a model trained with it records
    clf = OnnxSentimentClassifier.from_classifier(torch_clf, cache_dir=cache)
    assert clf.truncation == "head_tail"
    np.testing.assert_allclose(clf.predict_proba(texts), torch_clf.predict_proba(texts), atol=1e-5, rtol=0)


def test_onnx_int8_agrees_with_fp32(mean_dir: Path, cache: Path) -> None:
    fp32 = _sharpened(SentimentClassifier.load(mean_dir, CFG.model_copy(update={"int8_fp32_layers": [0]})))
    int8 = OnnxSentimentClassifier.from_classifier(fp32, cache_dir=cache, inference="int8")
    assert int8.inference == "int8" and int8.path is not None
    import onnx

    nodes = onnx.load(str(int8.path)).graph.node
    fp32_matmuls = [n.name for n in nodes if n.op_type == "MatMul" and "Constant" not in n.input[1]]
    # 2 layers x (q, k, v, attention output, intermediate, FFN output) int8 but layer 0's FFN output,
    assert sum(n.op_type == "MatMulInteger" for n in nodes) == 12  # and the (unread) [CLS] pooler
    assert [n for n in fp32_matmuls if n.endswith("/output/dense/MatMul") and "attention" not in n] == [
        "/model/bert/encoder/layer.0/output/dense/MatMul"
    ]
    texts = _corpus()
    a, b = fp32.predict_proba(texts, batch_size=8), int8.predict_proba(texts, batch_size=8)
    assert np.allclose(b.sum(axis=1), 1.0, atol=1e-5)
    assert a.max(axis=1).mean() > 0.6  # the sharpened head decides: agreement below is not luck
    agreement = float((a.argmax(axis=1) == b.argmax(axis=1)).mean())
    assert agreement >= 0.9, agreement
    assert float(np.abs(a - b).mean()) < 0.05
    assert not np.allclose(a, b, atol=1e-5)  # int8 really computed differently
    with pytest.raises(ValueError, match="fp32, int8"):
        OnnxSentimentClassifier.from_classifier(fp32, cache_dir=cache, inference="int4")  # type: ignore[arg-type]
    # sentiment.int8_fp32_layers picks the FFN outputs kept fp32: another set, another cached file
    cfg = CFG.model_copy(update={"int8_fp32_layers": [1]})
    other = OnnxSentimentClassifier.from_classifier(
        SentimentClassifier(fp32.model, fp32.tokenizer, cfg), cache_dir=cache, inference="int8"
    )
    assert other.path != int8.path
    same = CFG.model_copy(update={"int8_fp32_layers": [1, 1]})  # the same set: the same cached file
    again = OnnxSentimentClassifier.from_classifier(
        SentimentClassifier(fp32.model, fp32.tokenizer, same), cache_dir=cache, inference="int8"
    )
    assert again.path == other.path
    nodes = onnx.load(str(other.path)).graph.node
    kept = [n.name for n in nodes if n.op_type == "MatMul" and "Constant" not in n.input[1]]
    assert [n for n in kept if n.endswith("/output/dense/MatMul") and "attention" not in n] == [
        "/model/bert/encoder/layer.1/output/dense/MatMul"
    ]


@pytest.mark.parametrize("inference", ["fp32", "int8"])
def test_sessions_read_the_torch_word_embeddings_in_place(inference: str, mean_dir: Path, cache: Path) -> None:
    """Both exports name the table as shared_initializers does, the session is handed the torch tensor's own
    memory, and it answers bit-for-bit as a session over the file's own copy."""
    import onnx
    import torch

    torch_clf = SentimentClassifier.load(mean_dir, CFG)
    clf = OnnxSentimentClassifier.from_classifier(torch_clf, cache_dir=cache, inference=inference)  # type: ignore[arg-type]
    weight = torch_clf.model.get_input_embeddings().weight
    ((name, value),) = clf._shared.items()
    assert value.data_ptr() == weight.data_ptr() and value.shape() == list(weight.shape)
    assert clf.path is not None
    assert name in {i.name for i in onnx.load(str(clf.path), load_external_data=False).graph.initializer}
    own = OnnxSentimentClassifier(
        onnx_sentiment._session(clf.path, torch.get_num_threads()),
        torch_clf.tokenizer,
        CFG,
        clf._order,
        clf.inference,
        clf.path,
    )
    texts = _corpus()
    np.testing.assert_array_equal(clf.predict_proba(texts), own.predict_proba(texts))
    cast = SentimentClassifier.load(mean_dir, CFG)
    cast.model.half()
    assert onnx_sentiment.shared_initializers(cast) == {}  # not float32: nothing shared


def test_export_is_cached_per_weights_and_mode(mean_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch_clf = SentimentClassifier.load(mean_dir, CFG)
    first = OnnxSentimentClassifier.from_classifier(torch_clf, cache_dir=tmp_path)
    files = sorted(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".onnx"]  # one file, no temporary left behind
    stamp = files[0].stat().st_mtime_ns

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_sentiment, "export_onnx", no_export)
    again = OnnxSentimentClassifier.from_classifier(SentimentClassifier.load(mean_dir, CFG), cache_dir=tmp_path)
    assert sorted(tmp_path.iterdir()) == files and files[0].stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.predict_proba(_texts(2)), first.predict_proba(_texts(2)))
    monkeypatch.undo()
    # other weights or another mode: another file
    OnnxSentimentClassifier.from_classifier(_sharpened(torch_clf, 2.0), cache_dir=tmp_path)
    OnnxSentimentClassifier.from_classifier(torch_clf, cache_dir=tmp_path, inference="int8")
    assert len(list(tmp_path.glob("*.onnx"))) == 3 and len(list(tmp_path.iterdir())) == 3


def test_threads_sharing_an_onnx_classifier_get_the_sequential_answers(mean_dir: Path, cache: Path) -> None:
    torch_clf = SentimentClassifier.load(mean_dir, CFG)
    for inference in ("fp32", "int8"):
        clf = OnnxSentimentClassifier.from_classifier(torch_clf, cache_dir=cache, inference=inference, threads=2)
        differing, total = race(clf)  # type: ignore[arg-type]
        assert total == N_THREADS * ROUNDS * 6
        assert differing == 0, f"{inference}: {differing} of {total} answers changed when threads shared the session"


def test_missing_onnxruntime_is_one_line(mean_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch_clf = SentimentClassifier.load(mean_dir, CFG)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    with pytest.raises(ReviewOpsError, match="needs the onnxruntime and onnx packages") as err:
        OnnxSentimentClassifier.from_classifier(torch_clf, cache_dir=tmp_path)
    assert "\n" not in str(err.value) and "sentiment.runtime=torch" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_export_is_one_line_and_leaves_no_file(
    mean_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Exporting the operator 'aten::frobnicate' to ONNX opset version 17 is not supported.\nmore")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ReviewOpsError) as err:
        OnnxSentimentClassifier.from_classifier(SentimentClassifier.load(mean_dir, CFG), cache_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and "aten::frobnicate" in message and "sentiment.runtime=torch" in message
    assert list(tmp_path.iterdir()) == []


def _settings(tmp_path: Path, runtime: str, inference: str) -> Settings:
    return Settings(
        paths=PathsConfig(models_dir=tmp_path / "models"),
        sentiment=SentimentConfig(max_length=64, runtime=runtime, inference=inference),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("runtime", "inference", "kind"),
    [
        ("torch", "fp32", "torch fp32"),
        ("torch", "int8", "torch int8"),
        ("onnx", "fp32", "onnx fp32"),
        ("onnx", "int8", "onnx int8"),
    ],
)
def test_runtime_classifier_follows_the_knobs(
    runtime: str, inference: str, kind: str, mean_dir: Path, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, runtime, inference)
    clf = runtime_classifier(SentimentClassifier.load(mean_dir, CFG), settings)
    assert f"{getattr(clf, 'runtime', 'torch')} {clf.inference}" == kind
    exported = sorted(onnx_cache_dir(settings).glob("*")) if onnx_cache_dir(settings).is_dir() else []
    # ONNX int8 rechecks its close calls with the fp32 export (sentiment.int8_recheck_margin, default 0.5)
    assert len(exported) == {"onnx fp32": 1, "onnx int8": 2}.get(kind, 0)


def test_scoring_and_serving_pick_onnx_from_the_knob(
    mean_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reviewops.scoring.models import resolve_models
    from reviewops.scoring.predictor import ReviewPredictor
    from reviewops.serving import loading
    from reviewops.testing.tiny import build_tiny_causal_lm

    settings = _settings(tmp_path, "onnx", "int8")
    predictor = ReviewPredictor(
        settings=settings, models=resolve_models(settings, sentiment=mean_dir, summaries="none")
    )
    scored = predictor.classifier
    assert isinstance(scored, RecheckedClassifier) and isinstance(scored.fast, OnnxSentimentClassifier)
    assert scored.fast.inference == "int8" and scored.exact.inference == "fp32"
    monkeypatch.setenv(loading.SENTIMENT_DIR_ENV, str(mean_dir))
    monkeypatch.setenv(loading.SUMMARIZER_DIR_ENV, str(build_tiny_causal_lm(tmp_path / "lm")))
    served = loading.load_models(object(), settings).classifier
    assert isinstance(served, RecheckedClassifier) and isinstance(served.fast, OnnxSentimentClassifier)
    assert served.inference == "int8" and served.runtime == "onnx"
    assert len(list(onnx_cache_dir(settings).glob("*.onnx"))) == 2  # both loaded the same two exports
    np.testing.assert_array_equal(served.predict_proba(_texts(4)), predictor.classifier.predict_proba(_texts(4)))
