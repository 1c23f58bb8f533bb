"""The scorecard of one evaluation: every metric, the sampling facts and the per-row table.

:func:`evaluate_predictors` is the model-free core of evaluation: prediction callables in, one
flat dict out, with namespaced keys (``eval/rougeL``, ``eval/contradiction_rate``,
``baseline/lead8/rougeL``, ``slice/language=zh/rougeL``, ``behaviour/directional_negation``...).
Any key containing ``/`` is a float metric; ``meta``, ``behaviour`` and ``predictions`` carry the
sampling facts, the failing behaviour cases and the per-row table.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.evaluation.baselines import lead_n, majority_baseline
from reviewops.evaluation.behaviour import SUMMARY_CASES, Predict, behaviour_checks
from reviewops.evaluation.faithfulness import POLAR, contradiction_flags, contradiction_rates
from reviewops.evaluation.metrics import ROUGE_TYPES, rouge_per_example, rouge_scores, sentiment_metrics, slice_metrics
from reviewops.reports import write_json
from reviewops.text import char_length

# Rows with more characters than this are cut in the logged predictions table (not in scoring).
_TABLE_TEXT_CHARS = 500


def split_fingerprint(df: pd.DataFrame) -> str:
    """A short hash of the test rows' ids, to tell whether two scores share a test split."""
    key = "review_id" if "review_id" in df.columns else "text"
    ids = sorted(df[key].astype(str))
    return hashlib.sha1("\n".join(ids).encode("utf-8")).hexdigest()[:12]


def sample_for_generation(df: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """The rows that generation-heavy metrics use: all, or a fixed-seed sample of ``max_rows``."""
    if max_rows is None or len(df) <= max_rows:
        return df
    return df.sample(n=max_rows, random_state=seed).sort_index()


def _cached(predict: Predict, cache: dict[str, str]) -> Predict:
    """Wrap a summarizer so texts already summarized are not generated twice."""

    def run(texts: list[str]) -> list[str]:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, predict(missing), strict=True))
        return [cache[t] for t in texts]

    return run


@dataclass
class _Rows:
    """The test rows being scored: all of them, the scorable pool and the generation sample."""

    df: pd.DataFrame  # every test row, with the prediction columns pre-created
    pool: pd.DataFrame  # rows with a reference summary (all rows when there is none)
    gen: pd.DataFrame  # the fixed-seed sample that generation-heavy metrics use


def _generation_limit(settings: Settings) -> int | None:
    """How many rows each summarizer generates for: ``evaluate.max_generate_samples`` or the profile's."""
    max_gen = settings.evaluate.max_generate_samples
    return max_gen if max_gen is not None else settings.train.active.max_eval_samples


def _has_values(df: pd.DataFrame, col: str) -> bool:
    return bool(col in df.columns and df[col].notna().any())


def _prepare_rows(settings: Settings, test_df: pd.DataFrame) -> _Rows:
    """Check the test rows, add empty prediction columns, and draw the generation sample."""
    if len(test_df) == 0:
        raise ReviewOpsError("the test set is empty; run `reviewops data split` first")
    missing = [c for c in ("text",) if c not in test_df.columns]
    if missing:
        raise ReviewOpsError(f"test data lacks column(s) {missing}; expected processed parquet")
    df = test_df.reset_index(drop=True).copy()
    # Pre-create the prediction columns: pandas' loc-setting a *new* column on a subset of
    # rows fills the other rows with garbage instead of missing values.
    for col in (
        "pred_label",
        "prediction",
        "lead",
        "untuned",
        "champion_prediction",
        "summary_label",
        "contradiction",
        "review_polarity",
    ):
        df[col] = pd.Series([None] * len(df), dtype=object)
    df["rougeL"] = np.nan
    # Sample among rows that can be scored, so the sample size is the number of ROUGE pairs.
    if _has_values(df, "summary"):
        pool = df[df["summary"].notna() & df["summary"].astype(str).str.strip().ne("")]
    else:
        pool = df
    return _Rows(df, pool, sample_for_generation(pool, _generation_limit(settings), settings.seed))


def _score_sentiment(
    df: pd.DataFrame,
    classify: Predict | None,
    champion_classify: Predict | None,
    notes: list[str],
    log: Callable[[str], None],
) -> dict[str, float]:
    """Sentiment on every labelled row (cheap): the candidate, the majority baseline, the champion."""
    if classify is None:
        return {}
    if not _has_values(df, "label"):
        notes.append("sentiment not scored: test rows have no label")
        return {}
    log(f"sentiment on {len(df)} rows")
    lab = df[df["label"].notna()]
    truth = lab["label"].tolist()
    df.loc[lab.index, "pred_label"] = list(classify(lab["text"].tolist()))
    result = {
        f"eval/sentiment_{k}": v for k, v in sentiment_metrics(truth, df.loc[lab.index, "pred_label"].tolist()).items()
    }
    result["baseline/majority/sentiment_macro_f1"] = sentiment_metrics(truth, majority_baseline(truth))["macro_f1"]
    if champion_classify is not None:
        cm = sentiment_metrics(truth, list(champion_classify(lab["text"].tolist())))
        result.update({f"champion/eval/sentiment_{k}": v for k, v in cm.items()})
    return result


def _score_summaries(
    rows: _Rows,
    lead: int,
    summarize: Predict | None,
    base_summarize: Predict | None,
    champion_summarize: Predict | None,
    log: Callable[[str], None],
) -> dict[str, float]:
    """ROUGE on the generation sample: lead-N, the candidate, the untuned base and the champion."""
    df, gen = rows.df, rows.gen[rows.gen["summary"].notna()]
    texts, refs = gen["text"].tolist(), gen["summary"].astype(str).tolist()
    df.loc[gen.index, "lead"] = lead_n(texts, lead)
    result = {f"baseline/lead{lead}/{k}": v for k, v in rouge_scores(df.loc[gen.index, "lead"].tolist(), refs).items()}
    if summarize is not None:
        log(f"summarizing {len(texts)} rows")
        df.loc[gen.index, "prediction"] = summarize(texts)
        per_row = rouge_per_example(df.loc[gen.index, "prediction"].tolist(), refs)
        df.loc[gen.index, "rougeL"] = [r["rougeL"] for r in per_row]
        result.update({f"eval/{k}": float(np.mean([r[k] for r in per_row])) for k in ROUGE_TYPES})
        lengths = [char_length(p) for p in df.loc[gen.index, "prediction"]]
        result["eval/summary_chars_mean"] = float(np.mean(lengths))
    if base_summarize is not None:
        log(f"untuned baseline on {len(texts)} rows")
        df.loc[gen.index, "untuned"] = list(base_summarize(texts))
        untuned = rouge_scores(df.loc[gen.index, "untuned"].tolist(), refs)
        result.update({f"baseline/untuned/{k}": v for k, v in untuned.items()})
    if champion_summarize is not None:
        log(f"champion summarizer on {len(texts)} rows")
        df.loc[gen.index, "champion_prediction"] = list(champion_summarize(texts))
        champion = rouge_scores(df.loc[gen.index, "champion_prediction"].tolist(), refs)
        result.update({f"champion/eval/{k}": v for k, v in champion.items()})
    return result


def _review_polarity(df: pd.DataFrame, index: pd.Index, classify: Predict) -> list[str]:
    """The review label a summary is held to: the gold label, else the predicted one (classified here if absent)."""
    review = df.loc[index, "pred_label"].copy()
    if "label" in df.columns:
        gold = df.loc[index, "label"]
        review = gold.where(gold.notna(), review)
    todo = review.index[review.isna()]
    if len(todo):
        review.loc[todo] = list(classify(df.loc[todo, "text"].tolist()))
    return [str(v) for v in review]


def _score_faithfulness(rows: _Rows, lead: int, classify: Predict, log: Callable[[str], None]) -> dict[str, float]:
    """Contradiction rates of every summary on the generation sample, judged by the candidate sentiment model.

    ``eval/contradiction_rate`` (+ ``_negative``/``_positive``/``_n``) for the candidate; the
    champion, lead-N, the untuned base and the human references get ``<prefix>/contradiction_rate``
    (the references' rate is the judge's own noise floor). The candidate's per-row
    ``summary_label`` and ``contradiction`` (None where the review is neutral) go to the table.
    """
    df, gen = rows.df, rows.df.loc[rows.gen.index]
    judged = [
        (prefix, col)
        for prefix, col in (
            ("eval", "prediction"),
            ("champion/eval", "champion_prediction"),
            (f"baseline/lead{lead}", "lead"),
            ("baseline/untuned", "untuned"),
            ("reference", "summary"),
        )
        if col in gen.columns and gen[col].notna().any()
    ]
    if not judged:
        return {}
    review = dict(zip(gen.index, _review_polarity(df, gen.index, classify), strict=True))
    texts = list(dict.fromkeys(str(t) for _, col in judged for t in gen[col].dropna()))
    log(f"faithfulness: sentiment of {len(texts)} summaries")
    read = dict(zip(texts, classify(texts), strict=True))
    result: dict[str, float] = {}
    for prefix, col in judged:
        part = gen[gen[col].notna()]
        rev, summ = [review[i] for i in part.index], [read[str(t)] for t in part[col]]
        flags = contradiction_flags(rev, summ)
        rates = contradiction_rates(rev, flags)
        if prefix != "eval":
            result[f"{prefix}/contradiction_rate"] = rates["contradiction_rate"]
            result[f"{prefix}/contradiction_rate_macro"] = rates["contradiction_rate_macro"]
            continue
        result.update({f"eval/{k}": v for k, v in rates.items()})
        df.loc[part.index, "summary_label"], df.loc[part.index, "review_polarity"] = summ, rev
        df.loc[part.index, "contradiction"] = pd.Series(
            [f if r in POLAR else None for r, f in zip(rev, flags, strict=True)], index=part.index, dtype=object
        )
    return result


def _score_generation(
    settings: Settings,
    rows: _Rows,
    predictors: tuple[Predict | None, Predict | None, Predict | None, Predict | None],
    notes: list[str],
    log: Callable[[str], None],
) -> dict[str, float]:
    """ROUGE of every summarizer on the sample, then the contradiction rates of their summaries.

    ``predictors`` is (candidate summarizer, untuned base, champion summarizer, candidate classifier).
    """
    summarize, base_summarize, champion_summarize, classify = predictors
    if not _has_values(rows.df, "summary"):
        if summarize is not None:
            notes.append("ROUGE not scored: test rows have no reference summary")
        return {}
    lead = settings.evaluate.lead_n
    result = _score_summaries(rows, lead, summarize, base_summarize, champion_summarize, log)
    if classify is None:
        notes.append("contradiction rate not scored: no sentiment model to read the summaries")
    else:
        result.update(_score_faithfulness(rows, lead, classify, log))
    return result


def _score_behaviour(
    settings: Settings,
    rows: _Rows,
    classify: Predict | None,
    summarize: Predict | None,
    log: Callable[[str], None],
) -> tuple[dict[str, float], dict[str, Any]]:
    """Behaviour checks (when ``evaluate.behaviour_checks``); summaries on the sample plus fixed cases."""
    if not settings.evaluate.behaviour_checks:
        return {}, {}
    log("behaviour checks")
    texts = rows.gen["text"].tolist() + SUMMARY_CASES if summarize is not None else None
    return behaviour_checks(classify, summarize, texts)


def _meta(settings: Settings, rows: _Rows, notes: list[str]) -> dict[str, Any]:
    """How the result was produced: row counts, sampling, the split fingerprint and notes."""
    return {
        "test_rows": int(len(rows.df)),
        "summarization_rows": int(len(rows.gen)),
        "summarization_sampled": bool(len(rows.gen) < len(rows.pool)),
        "max_generate_samples": _generation_limit(settings),
        "max_eval_samples": settings.train.active.max_eval_samples,
        "sample_seed": settings.seed,
        "profile": settings.train.profile,
        "test_fingerprint": split_fingerprint(rows.df),
        "rouge": "F-measure 0-1; CJK per character, Latin words Porter-stemmed",
        "contradiction": (
            "share of summaries of positive/negative reviews that the candidate sentiment model reads "
            "as the opposite polarity; review polarity from the gold label, else predicted"
        ),
        "notes": notes,
    }


def evaluate_predictors(
    settings: Settings,
    test_df: pd.DataFrame,
    summarize: Predict | None,
    classify: Predict | None,
    base_summarize: Predict | None = None,
    champion_summarize: Predict | None = None,
    champion_classify: Predict | None = None,
    out_json: Path | None = None,
    notes: list[str] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Compute every metric from prediction callables (the model-free core of evaluation).

    Sentiment is scored on every test row; summarization (model, untuned base, champion,
    lead-N) on the same fixed-seed sample (seed = ``settings.seed``) of at most
    ``evaluate.max_generate_samples`` rows that have a reference summary (when that is None,
    ``train.active.max_eval_samples``), recorded under ``meta``.

    Args:
        settings: for ``evaluate.*``, ``train.active.max_eval_samples`` and the seed.
        test_df: processed test rows (``text``, ``summary``, ``label``, ``language``, optional
            ``category``, ``review_id``).
        summarize / classify: the candidate models (either may be None to skip that part).
        base_summarize: the untuned summarizer for ``baseline/untuned/*``.
        champion_summarize / champion_classify: the registry champion, re-scored on the same
            rows as ``champion/eval/*`` so the gate compares like with like.
        out_json: where to write the result (parent dirs are created).
        notes: free-text notes carried into ``meta.notes`` (e.g. a skipped baseline).
        log: progress callback.

    The candidate sentiment model also reads every summary of the sample: the contradiction
    rates (:mod:`reviewops.evaluation.faithfulness`) sit next to ROUGE under the same prefixes.

    Returns:
        Flat metrics (``eval/…``, ``baseline/…``, ``champion/…``, ``reference/…``, ``slice/…``,
        ``behaviour/…``) plus ``meta`` (sampling, counts, fingerprint, notes),
        ``behaviour`` (failing cases) and ``predictions`` (one record per test row).
    """
    rows = _prepare_rows(settings, test_df)
    notes = list(notes or [])
    result = _score_sentiment(rows.df, classify, champion_classify, notes, log)
    # The behaviour checks reuse the sample's summaries instead of generating them again.
    summarize_c = _cached(summarize, {}) if summarize is not None else None
    result.update(
        _score_generation(settings, rows, (summarize_c, base_summarize, champion_summarize, classify), notes, log)
    )
    result.update(slice_metrics(rows.df))
    behaviour_metrics, behaviour = _score_behaviour(settings, rows, classify, summarize_c, log)
    result.update(behaviour_metrics)
    out: dict[str, Any] = {k: result[k] for k in sorted(result)}
    out["meta"] = _meta(settings, rows, notes)
    out["behaviour"] = behaviour
    out["predictions"] = _predictions_table(rows.df)
    if out_json is not None:
        write_result(out, out_json)
    return out


def _predictions_table(df: pd.DataFrame) -> list[dict[str, Any]]:
    cols = [
        c
        for c in (
            "review_id",
            "product_id",
            "language",
            "category",
            "text",
            "summary",
            "prediction",
            "lead",
            "untuned",
            "rougeL",
            "summary_label",
            "contradiction",
            "label",
            "pred_label",
        )
        if c in df.columns
    ]
    table = df[cols].copy()
    table["text"] = table["text"].astype(str).str.slice(0, _TABLE_TEXT_CHARS)
    table = table.rename(columns={"summary": "reference"})
    # NaN is not valid JSON; None is.
    return json.loads(table.to_json(orient="records", force_ascii=False))


def write_result(result: dict[str, Any], path: Path | str) -> Path:
    """Write an evaluation result as UTF-8 JSON (NaN written as null)."""
    return write_json(path, json_safe(result))


def json_safe(result: dict[str, Any]) -> dict[str, Any]:
    """The result with NaN metrics as None: NaN is not valid JSON (a check with no cases is NaN)."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}


def metrics_of(result: dict[str, Any]) -> dict[str, float]:
    """The float metrics of a result (every key with a ``/``), NaN/None dropped."""
    return {
        k: float(v)
        for k, v in result.items()
        if "/" in k and isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v))
    }
