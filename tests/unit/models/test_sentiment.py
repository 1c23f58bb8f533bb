"""SentimentClassifier's int8 CPU path: same answers as fp32 within tolerance, thread-safe, quiet."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from reviewops.config import SentimentConfig
from reviewops.models.int8 import full_range_activations_ok, quantize_int8, read_cpu_flags
from reviewops.models.sentiment import SentimentClassifier
from reviewops.models.tokens import encode_batch, encode_texts
from tests.unit.models.test_sentiment_threads import N_THREADS, ROUNDS, _texts, mean_pooled_checkpoint, race

CFG = SentimentConfig(max_length=64)


@pytest.fixture(scope="module")
def mean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mean_pooled_checkpoint(tmp_path_factory.mktemp("int8") / "encoder")


def _corpus() -> list[str]:
    return [text for thread in range(6) for text in _texts(thread, n=16)]  # 96 texts of 1-60 words


def _sharpened(clf: SentimentClassifier, factor: float = 200.0) -> SentimentClassifier:
    """The random tiny head gives near-uniform probabilities; a scaled head makes argmax margins real."""
    import torch

    with torch.no_grad():
        clf.model.classifier.weight.mul_(factor)
    return clf


def _dynamic_linears(model) -> int:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return sum(isinstance(m, DynamicLinear) for m in model.modules())


def test_int8_copy_agrees_with_fp32_and_leaves_the_original_alone(mean_dir: Path) -> None:
    import torch

    fp32 = _sharpened(SentimentClassifier.load(mean_dir, CFG))
    int8 = fp32.quantized()
    assert (fp32.inference, int8.inference) == ("fp32", "int8")
    assert _dynamic_linears(fp32.model) == 0  # the original model was copied, not converted
    # 2 layers x (q, k, v, attention output, intermediate, FFN output) + the pooler: the default
    # int8_fp32_layers (e5's 4 and 5) are not in this 2-layer encoder; the head stays fp32
    assert CFG.int8_fp32_layers == [4, 5] and _dynamic_linears(int8.model) == 13
    assert isinstance(int8.model.classifier, torch.nn.Linear)
    texts = _corpus()
    a, b = fp32.predict_proba(texts, batch_size=8), int8.predict_proba(texts, batch_size=8)
    assert a.shape == b.shape == (96, 3) and np.allclose(b.sum(axis=1), 1.0, atol=1e-5)
    assert a.max(axis=1).mean() > 0.6  # the sharpened head decides: agreement below is not luck
    agreement = float((a.argmax(axis=1) == b.argmax(axis=1)).mean())
    assert agreement >= 0.95, agreement
    assert float(np.abs(a - b).mean()) < 0.02
    assert fp32.predict(texts[:5]) == [fp32.predict([t])[0] for t in texts[:5]]  # fp32 still answers as before


def test_load_int8_quantizes_on_the_cpu_and_survives_the_scoring_engines_cast(mean_dir: Path) -> None:
    import torch

    clf = SentimentClassifier.load(mean_dir, CFG, inference="int8")
    assert clf.inference == "int8" and clf.model.device.type == "cpu"
    before = clf.predict_proba(_texts(3), batch_size=4)
    clf.model = clf.model.to(device="cpu", dtype=torch.float32)  # what ReviewPredictor does on a CPU
    assert clf.inference == "int8"
    np.testing.assert_array_equal(clf.predict_proba(_texts(3), batch_size=4), before)
    assert SentimentClassifier.load(mean_dir, CFG).inference == "fp32"  # the default stays fp32
    with pytest.raises(ValueError, match="fp32, int8"):
        SentimentClassifier.load(mean_dir, CFG, inference="int4")  # type: ignore[arg-type]


def test_threads_sharing_an_int8_classifier_get_the_sequential_answers_bit_for_bit(mean_dir: Path) -> None:
    clf = SentimentClassifier.load(mean_dir, CFG, inference="int8")
    differing, total = race(clf)
    assert total == N_THREADS * ROUNDS * 6
    assert differing == 0, f"{differing} of {total} int8 answers changed when threads shared the classifier"


def test_quantizing_raises_no_torch_deprecation_warnings(mean_dir: Path) -> None:
    fp32 = SentimentClassifier.load(mean_dir, CFG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        int8 = fp32.quantized()
        int8.predict_proba(_texts(1), batch_size=4)
    assert [str(w.message)[:80] for w in caught] == []


def test_quantize_int8_keeps_the_named_layers_and_refuses_nothing_on_cpu(mean_dir: Path) -> None:
    model = SentimentClassifier.load(mean_dir, CFG).model
    assert _dynamic_linears(quantize_int8(model, keep=())) == 14  # the head too
    assert _dynamic_linears(quantize_int8(model, keep=("classifier", "bert.pooler"))) == 12
    assert _dynamic_linears(model) == 0


def test_quantize_int8_shares_the_fp32_tensors_and_answers_as_a_private_copy(mean_dir: Path) -> None:
    """The int8 copy reads the original's fp32 parameters (embeddings, LayerNorm, the head) instead of
    duplicates, leaves the original as it was, and answers bit-for-bit as an int8 copy of a private copy."""
    import copy

    import torch

    fp32 = SentimentClassifier.load(mean_dir, CFG)
    before = {name: t.clone() for name, t in fp32.model.state_dict().items()}
    int8 = quantize_int8(fp32.model)
    originals = {id(p) for p in fp32.model.parameters()}
    kept = list(int8.parameters())
    assert len(kept) > 10 and all(id(p) in originals for p in kept)
    assert int8.get_input_embeddings().weight is fp32.model.get_input_embeddings().weight
    after = fp32.model.state_dict()
    assert _dynamic_linears(fp32.model) == 0 and all(torch.equal(t, after[name]) for name, t in before.items())
    private = quantize_int8(copy.deepcopy(fp32.model))
    assert private.get_input_embeddings().weight is not fp32.model.get_input_embeddings().weight
    texts = _corpus()
    shared_p = SentimentClassifier(int8, fp32.tokenizer, CFG).predict_proba(texts)
    np.testing.assert_array_equal(shared_p, SentimentClassifier(private, fp32.tokenizer, CFG).predict_proba(texts))


def test_int8_engine_packs_for_onednn_only_on_amx_cpus_and_restores_the_process_engine(mean_dir: Path) -> None:
    import torch

    from reviewops.models.int8 import int8_engine

    onednn = "onednn" in torch.backends.quantized.supported_engines
    assert int8_engine({"avx2", "amx_int8", "amx_tile"}) == ("onednn" if onednn else None)
    assert int8_engine({"avx2", "avx512_vnni"}) is None
    before = torch.backends.quantized.engine
    model = SentimentClassifier.load(mean_dir, CFG).model
    for engine in ("auto", None, "onednn" if onednn else None):
        quantize_int8(model, engine=engine)
        assert torch.backends.quantized.engine == before


def test_onednn_packing_quantizes_activations_to_all_8_bits(mean_dir: Path) -> None:
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    if "onednn" not in torch.backends.quantized.supported_engines:
        pytest.skip("this torch has no oneDNN quantized engine")
    model = SentimentClassifier.load(mean_dir, CFG).model
    versions = {
        e: {m.version for m in quantize_int8(model, engine=e).modules() if isinstance(m, DynamicLinear)}
        for e in ("onednn", "qnnpack", None)
    }
    # version 3 calls the op without reduce_range; the default engine (x86) only on a VNNI CPU
    default = 3 if full_range_activations_ok(torch.backends.quantized.engine) else 4
    assert versions == {"onednn": {3}, "qnnpack": {4}, None: {default}}


def test_full_range_activations_only_where_no_16_bit_sum_can_saturate() -> None:
    assert full_range_activations_ok("onednn", set())
    assert full_range_activations_ok("x86", {"avx2", "avx512_vnni"})
    assert full_range_activations_ok("fbgemm", {"avx2", "avx_vnni"})
    assert not full_range_activations_ok("x86", {"avx2", "avx512f"})  # AVX2 vpmaddubsw saturates in 16 bits
    assert not full_range_activations_ok("qnnpack", {"avx512_vnni"})
    assert isinstance(read_cpu_flags(), frozenset) and read_cpu_flags() is read_cpu_flags()  # read once


def test_head_tail_keeps_the_first_quarter_and_the_last_three_quarters(mean_dir: Path) -> None:
    tok = SentimentClassifier.load(mean_dir, SentimentConfig(max_length=16)).tokenizer
    words = [f"w{i}" for i in range(60)]
    text = " ".join(words)
    full = tok([text])["input_ids"][0]
    assert len(full) > 16
    got = encode_texts(tok, [text, "short review"], 16, "head_tail")
    ids = got["input_ids"][0]
    assert len(ids) == 16 and ids[:4] == full[:4] and ids[4:] == full[-12:]
    assert ids[0] == full[0] and ids[-1] == full[-1]  # [CLS] ... [SEP] kept
    assert all(len(v[0]) == 16 for v in got.values())  # masks / type ids cut alike
    assert got["input_ids"][1] == tok(["short review"])["input_ids"][0]  # short texts untouched
    head = encode_texts(tok, [text], 16, "head")["input_ids"][0]
    assert head == tok([text], truncation=True, max_length=16)["input_ids"][0]
    batch = encode_batch(tok, [text, "short review"], 16, "head_tail", "np")
    assert batch["input_ids"].shape == (2, 16) and batch["attention_mask"][1].sum() < 16
    with pytest.raises(ValueError, match="head, head_tail"):
        encode_texts(tok, [text], 16, "middle")


def test_int8_fp32_layers_pick_ffn_outputs_only(mean_dir: Path) -> None:
    import torch

    from reviewops.models.int8 import ffn_output_linears

    fp32 = SentimentClassifier.load(mean_dir, CFG)
    assert ffn_output_linears(fp32.model, [1]) == ("bert.encoder.layer.1.output.dense",)  # not attention's
    assert ffn_output_linears(fp32.model, [0, 1, 7]) == (
        "bert.encoder.layer.0.output.dense",
        "bert.encoder.layer.1.output.dense",
    )
    every = SentimentClassifier(fp32.model, fp32.tokenizer, CFG.model_copy(update={"int8_fp32_layers": []}))
    assert _dynamic_linears(every.quantized().model) == 13
    both = SentimentClassifier(fp32.model, fp32.tokenizer, CFG.model_copy(update={"int8_fp32_layers": [0, 1]}))
    assert _dynamic_linears(both.quantized().model) == 11
    one = SentimentClassifier(fp32.model, fp32.tokenizer, CFG.model_copy(update={"int8_fp32_layers": [1]})).quantized()
    layers = one.model.bert.encoder.layer
    assert isinstance(layers[1].output.dense, torch.nn.Linear) and _dynamic_linears(one.model) == 12
    assert not isinstance(layers[1].attention.output.dense, torch.nn.Linear)  # the attention projection is int8
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        SentimentConfig(int8_fp32_layers=[-1])
