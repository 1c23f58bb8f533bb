"""The drift check's fixed-seed samples: sampled texts, their embeddings and the champion's predictions on them."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reviewops.errors import ReviewOpsError
from reviewops.monitoring.descriptors import as_texts
from reviewops.monitoring.embeddings import embed, embed_cached
from reviewops.schema import LABELS
from reviewops.text import tokenize

if TYPE_CHECKING:
    from reviewops.config import DriftConfig

Predictor = Callable[[list[str]], Any]


@dataclass
class Samples:
    """Both sides' sample frames (space-joined tokens, ``emb_*`` columns, predictions) and how they were drawn."""

    reference: pd.DataFrame
    current: pd.DataFrame
    emb_cols: list[str]
    reference_sampled: int
    current_sampled: int
    note: str


def _sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(df) <= n:
        return df
    return df.sample(n=n, random_state=seed)


def sampling_note(n_ref: int, m_ref: int, n_cur: int, m_cur: int, seed: int) -> str:
    """The sentence the reports show about what was sampled (``n`` of ``m`` rows per side)."""
    return (
        f"sampled {n_ref} of {m_ref} reference rows and {n_cur} of {m_cur} current rows "
        f"with seed {seed} (embeddings, text, predictions); descriptors and categorical drift "
        f"use all rows"
    )


def predict_columns(
    texts: list[str], predict_fn: Predictor | None, summarize_len_fn: Predictor | None
) -> dict[str, np.ndarray]:
    """``pred_sentiment`` (labels) and ``pred_summary_len`` (NFC code points) of ``texts``, for the callables given.

    Raises:
        ReviewOpsError: a callable did not return one value per text.
    """
    out: dict[str, np.ndarray] = {}
    if predict_fn is not None:
        pred = predict_fn(texts)
        arr = np.asarray(pred)
        if arr.ndim == 2:  # probabilities in schema.LABELS order
            arr = np.asarray(LABELS, dtype=object)[arr.argmax(axis=1)]
        out["pred_sentiment"] = np.asarray([str(p) for p in arr], dtype=object)
    if summarize_len_fn is not None:
        lengths = list(summarize_len_fn(texts))
        out["pred_summary_len"] = np.asarray(
            [len(unicodedata.normalize("NFC", x)) if isinstance(x, str) else float(x) for x in lengths],
            dtype=np.float64,
        )
    if out and any(len(v) != len(texts) for v in out.values()):
        raise ReviewOpsError("predict_fn/summarize_len_fn must return one value per text")
    return out


def scored_predictor(labels: pd.Series, fallback: Predictor | None) -> Predictor:
    """A predictor that answers with given labels (the scored dataset's, one per sampled row, in order).

    Rows without a label (a review the scoring run did not keep) go to ``fallback`` (the
    champion), else get ``"missing"``.
    """
    given = labels.astype(object).where(labels.notna(), None).tolist()

    def predict(texts: list[str]) -> list[str]:
        if len(texts) != len(given):
            raise ReviewOpsError(f"{len(given)} scored labels for {len(texts)} sampled texts")
        out = [None if v is None else str(v) for v in given]
        missing = [i for i, v in enumerate(out) if v is None]
        if missing and fallback is not None:
            filled = predict_columns([texts[i] for i in missing], fallback, None)["pred_sentiment"]
            for i, label in zip(missing, filled, strict=True):
                out[i] = str(label)
        return [v if v is not None else "missing" for v in out]

    return predict


def _sample_frame(
    texts: list[str],
    emb: np.ndarray,
    emb_cols: list[str],
    predict_fn: Predictor | None,
    summarize_len_fn: Predictor | None,
) -> pd.DataFrame:
    # Space-joined CJK-aware tokens: Evidently's TF-IDF splits on spaces, Chinese has none.
    frame = pd.DataFrame({"text": [" ".join(tokenize(t)) for t in texts]})
    frame = pd.concat([frame, pd.DataFrame(emb, columns=emb_cols)], axis=1)
    for col, values in predict_columns(texts, predict_fn, summarize_len_fn).items():
        frame[col] = values
    return frame


def draw_samples(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    cfg: DriftConfig,
    *,
    cache_dir: Path,
    predict_fn: Predictor | None,
    summarize_len_fn: Predictor | None,
    say: Callable[[str], None],
    current_labels: str | None = None,
) -> Samples:
    """Sample ``drift.sample_size`` rows per side (seed ``drift.seed``), embed them and run the champion.

    The reference sample's embeddings are cached under ``cache_dir`` (the same rows every run).
    ``current_labels`` names a column of ``current`` with predicted labels (the scored
    dataset's ``sentiment``): the current side's predicted sentiment is read from it instead
    of running ``predict_fn`` again (only when ``predict_fn`` predicts the reference side).
    """
    ref_s = _sample(reference, cfg.sample_size, cfg.seed)
    cur_s = _sample(current, cfg.sample_size, cfg.seed)
    note = sampling_note(len(ref_s), len(reference), len(cur_s), len(current), cfg.seed)
    ref_texts = as_texts(ref_s["text"]).tolist()
    cur_texts = as_texts(cur_s["text"]).tolist()
    say(f"embedding {len(ref_texts)} + {len(cur_texts)} sampled texts")
    model_path = cfg.embedding_model or None
    ref_emb = embed_cached(ref_texts, model_path, cfg.embedding_batch_size, cache_dir)
    cur_emb = embed(cur_texts, model_path, cfg.embedding_batch_size)
    emb_cols = [f"emb_{i}" for i in range(ref_emb.shape[1])]
    cur_predict = predict_fn
    if predict_fn is not None and current_labels is not None and current_labels in cur_s.columns:
        cur_predict = scored_predictor(cur_s[current_labels], predict_fn)
    return Samples(
        reference=_sample_frame(ref_texts, ref_emb, emb_cols, predict_fn, summarize_len_fn),
        current=_sample_frame(cur_texts, cur_emb, emb_cols, cur_predict, summarize_len_fn),
        emb_cols=emb_cols,
        reference_sampled=len(ref_s),
        current_sampled=len(cur_s),
        note=note,
    )
