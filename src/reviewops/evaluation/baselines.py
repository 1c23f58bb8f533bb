"""Baselines a trained model must beat: lead-N summaries and the majority sentiment label."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from reviewops.text import CJK_CHAR, detect_language, tokenize


def _join_tokens(tokens: Sequence[str]) -> str:
    """Join tokens back into text: no space next to a CJK char, one space between words."""
    out = ""
    for tok in tokens:
        if out and not (CJK_CHAR.match(tok) or CJK_CHAR.match(out[-1])):
            out += " "
        out += tok
    return out


def lead_n(texts: Iterable[str], n: int = 8, cjk_chars_per_word: float = 1.5) -> list[str]:
    """The lead-N baseline: the first ``n`` words of each text.

    A Chinese word is about 1.5 characters, so a Chinese text (``detect_language == "zh"``)
    keeps ``round(n * cjk_chars_per_word)`` tokens (characters): 12 for ``n=8``. Tokens come
    from :func:`reviewops.text.tokenize` (case kept) and are rejoined without spaces around
    CJK characters, so punctuation is dropped, which ROUGE ignores anyway.
    """
    out = []
    for text in texts:
        text = text or ""
        limit = round(n * cjk_chars_per_word) if detect_language(text) == "zh" else n
        out.append(_join_tokens(tokenize(text, lowercase=False)[:limit]))
    return out


def majority_baseline(y_true: Sequence[str], train_labels: Sequence[str] | None = None) -> list[str]:
    """Predict the most frequent label (of ``train_labels`` when given, else of ``y_true``)."""
    source = list(train_labels) if train_labels is not None else list(y_true)
    if not source:
        return []
    top = pd.Series(source).value_counts().index[0]
    return [top] * len(y_true)
