"""Abstractive review summarizer over any causal LM or seq2seq checkpoint (Auto classes).

The same prompt construction (:func:`build_source`) is used for fine-tuning and inference, so
a fine-tuned model sees at inference exactly the input format it was trained on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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


def token_batches(
    order: list[int], lengths: list[int], max_items: int, max_tokens: int | None = None
) -> list[list[int]]:
    """Split ``order`` (indices into ``lengths``) into consecutive generation batches.

    Each batch has at most ``max_items`` items and, with ``max_tokens``, at most that many padded
    prompt tokens (items x the longest prompt of the batch), so one ``generate`` call has bounded
    work; an item longer than ``max_tokens`` on its own forms a batch of one.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        grown = max(longest, lengths[i])
        if current and (len(current) >= max_items or (max_tokens and grown * (len(current) + 1) > max_tokens)):
            batches.append(current)
            current, grown = [], lengths[i]
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    return batches


def _rows_unwanted(rows: list[int], wanted: Callable[[int], bool], num_beams: int) -> Any:
    """A transformers StoppingCriteria that finishes each generated row whose text is no longer wanted."""
    import torch
    from transformers import StoppingCriteria

    class RowsUnwanted(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            # Checked after every new token: a row whose deadline passed or whose request was
            # cancelled stops here instead of running to max_new_tokens.
            done = [not wanted(rows[r // max(1, num_beams)]) for r in range(input_ids.shape[0])]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return RowsUnwanted()


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

    def _generate_batch(self, sources: list[str], max_new_tokens: int, stopping: Any = None) -> list[str]:
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
        if stopping is not None:
            from transformers import StoppingCriteriaList

            gen_kwargs["stopping_criteria"] = StoppingCriteriaList([stopping])
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
            out = out[:, enc["input_ids"].shape[1] :]  # decode only the new tokens
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)

    def summarize(
        self,
        texts: list[str],
        batch_size: int = 8,
        max_new_tokens: int | None = None,
        max_batch_tokens: int | None = None,
    ) -> list[str]:
        """One summary per review, in input order; never an empty string.

        Args:
            texts: review bodies (any language the tokenizer covers).
            batch_size: reviews per ``generate`` call (inputs are length-sorted first).
            max_new_tokens: overrides ``cfg.max_new_tokens``.
            max_batch_tokens: also cap each ``generate`` call at this many padded prompt tokens.
        """
        out = self.summarize_some(texts, batch_size, max_new_tokens, max_batch_tokens)
        return [s or "" for s in out]  # without `wanted` every text gets a summary

    def summarize_some(
        self,
        texts: list[str],
        batch_size: int = 8,
        max_new_tokens: int | None = None,
        max_batch_tokens: int | None = None,
        wanted: Callable[[int], bool] | None = None,
    ) -> list[str | None]:
        """:meth:`summarize` that stops working on texts nobody waits for any more.

        Args:
            texts: review bodies.
            batch_size: reviews per ``generate`` call.
            max_new_tokens: overrides ``cfg.max_new_tokens``.
            max_batch_tokens: cap on padded prompt tokens per ``generate`` call (see :func:`token_batches`).
            wanted: ``wanted(i)`` says whether text ``i`` is still wanted (its deadline has not
                passed, its request was not cancelled). It is checked before each ``generate``
                call, which skips unwanted texts, and after every generated token, which stops
                the rows of unwanted texts.

        Returns:
            One summary per text, in input order; None for a text that stopped being wanted.
        """
        texts = [str(t) if t is not None else "" for t in texts]
        if not texts:
            return []
        limit = max_new_tokens or self.cfg.max_new_tokens
        sources = [build_source(self.cfg.prompt, t, self.tokenizer, self.cfg.max_source_tokens) for t in texts]
        lengths = [len(ids) for ids in self.tokenizer(sources)["input_ids"]]
        # Length-sorted batches waste less compute on padding.
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        results: list[str | None] = [None] * len(texts)
        for idx in token_batches(order, lengths, max(1, batch_size), max_batch_tokens):
            if wanted is not None:
                idx = [i for i in idx if wanted(i)]
                if not idx:
                    continue
            batch = [sources[i] for i in idx]
            if wanted is None:
                decoded = self._generate_batch(batch, limit)
            else:
                decoded = self._generate_batch(batch, limit, stopping=_rows_unwanted(idx, wanted, self.cfg.num_beams))
            for i, raw in zip(idx, decoded, strict=True):
                if wanted is None or wanted(i):
                    results[i] = first_line(raw) or lead_fallback(texts[i]) or "(empty review)"
        return results
