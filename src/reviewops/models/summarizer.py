"""Abstractive review summarizer over any causal LM or seq2seq checkpoint (Auto classes).

The same prompt construction (:func:`build_source`) is used for fine-tuning and inference, so
a fine-tuned model sees at inference exactly the input format it was trained on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from reviewops.config import SummarizerConfig
from reviewops.text import CJK_CHAR, normalize

Kind = Literal["causal", "seq2seq"]

FALLBACK_WORDS = 8
FALLBACK_CJK_CHARS = 12
_LATIN_WORD = re.compile(r"\S+")


def lead_fallback(text: str, n_words: int = FALLBACK_WORDS, n_cjk: int = FALLBACK_CJK_CHARS) -> str:
    """First words of a review (first characters for Chinese): the answer when generation is empty."""
    text = " ".join(normalize(text).split())
    if not text:
        return ""
    if len(CJK_CHAR.findall(text)) * 2 >= len(text.replace(" ", "")):
        return text[:n_cjk]
    return " ".join(_LATIN_WORD.findall(text)[:n_words])


def detect_kind(path: Path | str, requested: str = "auto") -> Kind:
    """``causal`` or ``seq2seq``: the requested kind, or read ``is_encoder_decoder`` from the config."""
    if requested in ("causal", "seq2seq"):
        return requested  # type: ignore[return-value]
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(path))
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"


def truncate_to_tokens(tokenizer: Any, text: str, max_tokens: int | None) -> str:
    """Cut ``text`` to at most ``max_tokens`` tokens, at a character boundary of the original."""
    if not max_tokens:
        return text
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=tokenizer.is_fast)
    ids = enc["input_ids"]
    if len(ids) <= max_tokens:
        return text
    if tokenizer.is_fast:
        return text[: enc["offset_mapping"][max_tokens - 1][1]]
    return tokenizer.decode(ids[:max_tokens], skip_special_tokens=True)


def build_source(template: str, text: str, tokenizer: Any = None, max_text_tokens: int | None = None) -> str:
    """The model input for one review: ``template`` with ``{text}`` replaced by the (truncated) review.

    Only the review is truncated, so the instruction and the trailing ``Title:`` cue survive.
    ``str.replace`` (not ``format``) so braces in a custom prompt need no escaping.
    """
    if tokenizer is not None:
        text = truncate_to_tokens(tokenizer, text, max_text_tokens)
    return template.replace("{text}", text) if "{text}" in template else f"{template}{text}"


def first_line(text: str) -> str:
    """The first non-empty line of generated text, without wrapping quotes."""
    for line in text.splitlines():
        line = line.strip().strip('"“”').strip()
        if line:
            return line
    return ""


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Summarizer:
    """Generate a one-line summary (a review title) for each review.

    Use :meth:`load`; the model runs in eval mode on CUDA when available (bf16), else CPU fp32.
    """

    def __init__(self, model: Any, tokenizer: Any, cfg: SummarizerConfig, kind: Kind) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.kind = kind
        self._stop_at_newline = True

    @classmethod
    def load(cls, path: Path | str, cfg: SummarizerConfig | None = None) -> Summarizer:
        """Load a summarizer from a local HF directory (causal LM or seq2seq, auto-detected).

        Args:
            path: model directory (``save_pretrained`` layout) with its tokenizer.
            cfg: prompt and generation settings (default: :class:`SummarizerConfig`).
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        cfg = cfg or SummarizerConfig()
        kind = detect_kind(path, cfg.kind)
        device = _device()
        dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        auto = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
        model = auto.from_pretrained(str(path), dtype=dtype).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if kind == "causal":
            # Batched generation appends new tokens on the right: pad prompts on the left.
            tokenizer.padding_side = "left"
        return cls(model, tokenizer, cfg, kind)

    def _generate_batch(self, sources: list[str], max_new_tokens: int) -> list[str]:
        import torch

        enc = self.tokenizer(sources, return_tensors="pt", padding=True)
        # Only what every generator accepts (a BERT tokenizer also returns token_type_ids).
        enc = {k: enc[k].to(self.model.device) for k in ("input_ids", "attention_mask") if k in enc}
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "num_beams": self.cfg.num_beams,
            "do_sample": False,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        out = None
        if self.kind == "causal" and self._stop_at_newline:
            # Only the first line is kept: stop there instead of generating to max_new_tokens.
            try:
                with torch.no_grad():
                    out = self.model.generate(**enc, **gen_kwargs, stop_strings=["\n"], tokenizer=self.tokenizer)
            except ValueError:  # the vocabulary cannot spell "\n" (e.g. WordPiece): plain generation
                self._stop_at_newline = False
        if out is None:
            with torch.no_grad():
                out = self.model.generate(**enc, **gen_kwargs)
        if self.kind == "causal":
            out = out[:, enc["input_ids"].shape[1]:]  # decode only the new tokens
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)

    def summarize(self, texts: list[str], batch_size: int = 8, max_new_tokens: int | None = None) -> list[str]:
        """One summary per review, in input order; never an empty string.

        Args:
            texts: review bodies (any language the tokenizer covers).
            batch_size: reviews per ``generate`` call (inputs are length-sorted first).
            max_new_tokens: overrides ``cfg.max_new_tokens``.
        """
        texts = [str(t) if t is not None else "" for t in texts]
        if not texts:
            return []
        limit = max_new_tokens or self.cfg.max_new_tokens
        sources = [build_source(self.cfg.prompt, t, self.tokenizer, self.cfg.max_source_tokens)
                   for t in texts]
        # Length-sorted batches waste less compute on padding.
        order = sorted(range(len(texts)), key=lambda i: len(sources[i]))
        results: list[str] = [""] * len(texts)
        for start in range(0, len(order), max(1, batch_size)):
            idx = order[start:start + batch_size]
            decoded = self._generate_batch([sources[i] for i in idx], limit)
            for i, raw in zip(idx, decoded, strict=True):
                results[i] = first_line(raw)
        return [r if r else (lead_fallback(t) or "(empty review)") for r, t in zip(results, texts, strict=True)]
