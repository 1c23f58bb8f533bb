"""The two Evidently reports of a drift check (all rows; the samples) and the per-column results they hold.

The all-rows report's ``DriftedColumnsCount`` is the one count of drifted columns: the summary's
``n_drifted`` / ``share_drifted``, the decision, the HTML banner, the embedded Evidently section
and the workspace dashboard all read it (:attr:`AllRowsReport.drifted`). Both reports also hold
the values the workspace dashboard plots over batches (:mod:`reviewops.monitoring.dashboard`):
mean text length and the detected-language mix on all rows, the predicted sentiment mix on the
sample.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reviewops.monitoring.decision import ColumnRules, auc_noise_floor, column_rules, embedding_threshold
from reviewops.monitoring.descriptors import NUMERIC_DESCRIPTORS
from reviewops.monitoring.jsonable import as_number
from reviewops.monitoring.sample import Samples
from reviewops.monitoring.trend import labels_of

if TYPE_CHECKING:
    from reviewops.config import DriftConfig

CATEGORICAL_COLUMNS = ["language", "detected_language", "category", "label", "rating"]
PREDICTION_COLUMNS = ["pred_sentiment", "pred_summary_len"]
EMBEDDINGS_NAME = "minilm"
MISSING = "missing"


@dataclass
class AllRowsReport:
    """The all-rows Evidently snapshot, its column results and the tables it compared."""

    snapshot: Any
    columns: dict[str, dict[str, Any]]
    cat_cols: list[str]
    reference: pd.DataFrame
    current: pd.DataFrame
    drifted: dict[str, Any]  # Evidently's DriftedColumnsCount: count, share, columns


@dataclass
class SampleReport:
    """The sample Evidently snapshot, its column results and the embedding score with its threshold."""

    snapshot: Any
    columns: dict[str, dict[str, Any]]
    embedding_score: float | None
    noise_floor: float
    threshold: float
    text_skipped: str | None


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
            out[col] = _categorical(labels_of(df)).to_numpy()
        elif col == "rating":
            out[col] = _rating_category(df["rating"]).to_numpy()
        else:
            out[col] = _categorical(df[col]).to_numpy()
    return out


def _present(df: pd.DataFrame, col: str) -> bool:
    if col == "label":
        return labels_of(df) is not None
    return col in df.columns and bool(df[col].notna().any())


def _column_metrics(numeric: list[str], categorical: list[str], rules: ColumnRules) -> list:
    from evidently.metrics import ValueDrift

    metrics = [ValueDrift(column=c, method=rules.num_method, threshold=rules.threshold) for c in numeric]
    metrics += [ValueDrift(column=c, method=rules.cat_method, threshold=rules.threshold) for c in categorical]
    return metrics


def _column_results(snapshot: Any, scope: str) -> dict[str, dict[str, Any]]:
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
            "score": as_number(metric["value"]),
            "method": cfg.get("method"),
            "threshold": as_number(cfg.get("threshold")),
            "drifted": bool(flags.get(col, False)),
            "scope": scope,
        }
    return out


def _drifted_count(snapshot: Any, columns: list[str]) -> dict[str, Any]:
    """``count`` and ``share`` of the snapshot's ``DriftedColumnsCount`` and the ``columns`` it counted."""
    for metric in snapshot.dict()["metrics"]:
        cfg = metric.get("config") or {}
        if cfg.get("type", "").endswith("DriftedColumnsCount"):
            value = metric["value"]
            return {"count": int(value["count"]), "share": float(value["share"]), "columns": columns}
    raise ValueError("the all-rows report has no DriftedColumnsCount")  # pragma: no cover - built below


def _dashboard_metrics(numeric: list[str], categorical: list[str]) -> list:
    """Values the workspace dashboard plots (no tests: they are not drift checks)."""
    from evidently.metrics import MeanValue, UniqueValueCount

    return [MeanValue(column=c, tests=[]) for c in numeric] + [
        UniqueValueCount(column=c, tests={}) for c in categorical
    ]


def _text_drift_possible(ref: pd.Series, cur: pd.Series) -> str | None:
    """Why Evidently's text domain classifier cannot run (TF-IDF keeps no terms), or None."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        TfidfVectorizer(sublinear_tf=True, max_df=0.5, stop_words="english").fit(pd.concat([ref, cur]))
    except ValueError as exc:
        return f"text drift skipped: {exc}"
    return None


def all_rows_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    descriptors: tuple[pd.DataFrame, pd.DataFrame],
    cfg: DriftConfig,
    *,
    name: str,
    created: datetime,
    say: Callable[[str], None],
) -> AllRowsReport:
    """Evidently on every row: numeric descriptors, language/category/label/rating drift.

    Args:
        reference: the reference rows; current: the new batch (both re-indexed from 0).
        descriptors: the reference's and the current batch's descriptors.
        cfg: the ``drift`` settings (column rules from :func:`column_rules`).
        name: report name; created: the check's time (the snapshot's timestamp).
        say: progress callback.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount

    rules = column_rules(cfg)
    cat_cols = [
        c for c in CATEGORICAL_COLUMNS if c == "detected_language" or (_present(reference, c) and _present(current, c))
    ]
    ref_tab = _tabular(reference, descriptors[0], cat_cols)
    cur_tab = _tabular(current, descriptors[1], cat_cols)
    tab_def = DataDefinition(numerical_columns=NUMERIC_DESCRIPTORS, categorical_columns=cat_cols)
    # No columns=: it counts all of tab_def, and equal parameters keep one dashboard series per panel.
    drifted_count = DriftedColumnsCount(
        num_method=rules.num_method,
        cat_method=rules.cat_method,
        num_threshold=rules.threshold,
        cat_threshold=rules.threshold,
        drift_share=rules.share_drifted,
    )
    report = Report(
        [
            drifted_count,
            *_column_metrics(NUMERIC_DESCRIPTORS, cat_cols, rules),
            *_dashboard_metrics(["char_length"], ["detected_language"]),
        ],
        metadata={"batch": name, "scope": "all rows"},
        tags=["reviewops", "all-rows"],
        include_tests=True,
    )
    say("Evidently report on all rows")
    with _quiet():
        snapshot = report.run(
            Dataset.from_pandas(cur_tab, data_definition=tab_def),
            Dataset.from_pandas(ref_tab, data_definition=tab_def),
            name=f"{name} (all rows)",
            timestamp=created.replace(tzinfo=None),
        )
    columns = _column_results(snapshot, "all rows")
    counted = _drifted_count(snapshot, NUMERIC_DESCRIPTORS + cat_cols)
    return AllRowsReport(snapshot, columns, cat_cols, ref_tab, cur_tab, counted)


def _embedding_score(snapshot: Any) -> float | None:
    return next(
        (
            as_number(m["value"])
            for m in snapshot.dict()["metrics"]
            if (m.get("config") or {}).get("type", "").endswith("EmbeddingsDrift")
        ),
        None,
    )


def sample_report(
    samples: Samples, cfg: DriftConfig, *, name: str, created: datetime, say: Callable[[str], None]
) -> SampleReport:
    """Evidently on the samples: MiniLM embeddings, the text domain classifier, the champion's predictions.

    The embedding and text thresholds are the effective one of :func:`embedding_threshold` at
    these sample sizes.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift, ValueDrift
    from evidently.metrics.embeddings import ModelDriftMethod

    ref_sf, cur_sf = samples.reference, samples.current
    skipped = _text_drift_possible(ref_sf["text"], cur_sf["text"])
    text_cols = [] if skipped else ["text"]
    pred_num = [c for c in ["pred_summary_len"] if c in ref_sf]
    pred_cat = [c for c in ["pred_sentiment"] if c in ref_sf]
    sample_def = DataDefinition(
        text_columns=text_cols or None,
        numerical_columns=samples.emb_cols + pred_num,
        categorical_columns=pred_cat or None,
        embeddings={EMBEDDINGS_NAME: samples.emb_cols},
    )
    floor = auc_noise_floor(len(ref_sf), len(cur_sf))
    auc_threshold = embedding_threshold(cfg, floor)
    metrics = [EmbeddingsDrift(embeddings_name=EMBEDDINGS_NAME, drift_method=ModelDriftMethod(threshold=auc_threshold))]
    # Absolute AUC vs the same effective threshold, not Evidently's 1,000-fold bootstrap (8 s).
    metrics += (
        [ValueDrift(column="text", method="abs_text_content_drift", threshold=auc_threshold)] if text_cols else []
    )
    metrics += _column_metrics(pred_num, pred_cat, column_rules(cfg)) + _dashboard_metrics([], pred_cat)
    report = Report(
        metrics,
        metadata={"batch": name, "scope": "sample", "sampling": samples.note},
        tags=["reviewops", "sample"],
        include_tests=True,
    )
    say("Evidently report on the samples (text domain classifier, embeddings)")
    with _quiet(), _fast_embedding_plot(cfg.embedding_plot_rows, cfg.seed):
        snapshot = report.run(
            Dataset.from_pandas(cur_sf, data_definition=sample_def),
            Dataset.from_pandas(ref_sf, data_definition=sample_def),
            name=f"{name} (sample)",
            timestamp=created.replace(tzinfo=None),
        )
    return SampleReport(
        snapshot, _column_results(snapshot, "sample"), _embedding_score(snapshot), floor, auc_threshold, skipped
    )
