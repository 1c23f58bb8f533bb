"""Product-level summaries: sentiment mix, average rating, recurring pros and cons, a condensed text.

Pros and cons are aspect phrases that recur in the positive (resp. negative) reviews more
than in the others: content-word uni/bigrams for English (stopwords removed), character
bigrams for Chinese (no word segmenter needed). The condensed summary quotes the most
representative per-review summaries of each side (highest mean overlap with their group).
Rows of the scored dataset bring a predicted ``sentiment``: used without ratings, reported
beside the ratings' mix with their agreement rate otherwise (:mod:`reviewops.scoring.sources`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from reviewops.errors import ReviewOpsError
from reviewops.schema import LABELS, rating_to_label
from reviewops.scoring.sources import agreement, predicted_labels, rating_labels
from reviewops.text import CJK_CHAR, detect_language, tokenize

# Review boilerplate and PII masks carry no aspect.
_DOMAIN_STOP = {
    "product",
    "item",
    "items",
    "bought",
    "buy",
    "buying",
    "purchase",
    "purchased",
    "one",
    "would",
    "get",
    "got",
    "really",
    "also",
    "just",
    "use",
    "used",
    "using",
    "thing",
    "things",
    "lot",
    "bit",
    "like",
    "it's",
    "i'm",
    "i've",
    "don't",
    "didn't",
    "doesn't",
    "isn't",
    "wasn't",
    "can't",
    "won't",
    "im",
    "ive",
    "dont",
    "email",
    "phone",
    "url",
    "review",
    "star",
    "stars",
    "amazon",
    "order",
    "ordered",
    "days",
    "day",
    "time",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
}
# Function characters that make poor Chinese aspect n-grams on their own.
_ZH_STOP = set("的了是我你他她它们也都就很太这那个还在和有一吗吧呢啊么得着把被给让说到买非常特别真挺比较过又再")


def _en_stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS | _DOMAIN_STOP)


def _is_cjk(token: str) -> bool:
    return bool(CJK_CHAR.match(token))


def aspect_phrases(text: str) -> set[tuple[str, ...]]:
    """Candidate aspect phrases of one text, as token tuples (a set: counted once per review).

    English: content words and adjacent content-word pairs. Chinese: character bigrams inside
    a run of CJK characters, a function character (的, 很, 了...) breaking the run.
    """
    stop = _en_stopwords()
    out: set[tuple[str, ...]] = set()
    tokens = tokenize(text or "")
    # Runs: consecutive content tokens of the same script; a stopword or script change breaks a run.
    run: list[str] = []
    runs: list[list[str]] = []
    for tok in tokens:
        cjk = _is_cjk(tok)
        keep = (tok not in _ZH_STOP) if cjk else (tok not in stop and len(tok) > 1 and not tok.isdigit())
        if keep and run and _is_cjk(run[-1]) == cjk:
            run.append(tok)
        else:
            if run:
                runs.append(run)
            run = [tok] if keep else []
    if run:
        runs.append(run)
    for r in runs:
        # Most Chinese words are two characters; without a segmenter, bigrams read best.
        sizes = (2,) if _is_cjk(r[0]) else (1, 2)
        for n in sizes:
            out.update(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
    return out


def phrase_text(phrase: Sequence[str]) -> str:
    """Render a token tuple: Chinese characters joined directly, words with spaces."""
    return "".join(phrase) if all(_is_cjk(t) for t in phrase) else " ".join(phrase)


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """True when one phrase contains the other, or a suffix of one is a prefix of the other
    (so "电池" and "池耐" from "电池耐用" are not both reported)."""
    for big, small in ((a, b), (b, a)):
        n = len(small)
        if any(big[i : i + n] == small for i in range(len(big) - n + 1)):
            return True
    return any(a[-k:] == b[:k] or b[-k:] == a[:k] for k in range(1, min(len(a), len(b))))


def distinctive_phrases(
    group: Sequence[str], others: Sequence[str], top_k: int = 5, min_reviews: int = 2
) -> list[dict[str, Any]]:
    """Phrases recurring in ``group`` texts more often (as a share of reviews) than in ``others``.

    Ranked by the number of group reviews mentioning the phrase, longer phrases slightly
    preferred; a phrase overlapping an already chosen one (sub- or super-phrase) is skipped.

    Returns:
        ``[{"phrase": str, "reviews": int}, ...]`` at most ``top_k`` long.
    """
    if not group:
        return []
    df_g: Counter[tuple[str, ...]] = Counter()
    for text in group:
        df_g.update(aspect_phrases(text))
    df_o: Counter[tuple[str, ...]] = Counter()
    for text in others:
        df_o.update(aspect_phrases(text))
    n_g, n_o = len(group), max(len(others), 1)
    support = min(min_reviews, n_g)
    candidates = [p for p, c in df_g.items() if c >= support and c / n_g > df_o.get(p, 0) / n_o]
    # Ties go to phrases frequent across all reviews: real words recur in many contexts,
    # character-bigram fragments do not.
    candidates.sort(
        key=lambda p: (-df_g[p] * (1 + 0.25 * (len(p) - 1)), -(df_g[p] + df_o.get(p, 0)), -len(p), phrase_text(p))
    )
    chosen: list[tuple[str, ...]] = []
    for p in candidates:
        if any(_overlaps(c, p) for c in chosen):
            continue
        chosen.append(p)
        if len(chosen) == top_k:
            break
    return [{"phrase": phrase_text(p), "reviews": int(df_g[p])} for p in chosen]


def representative(summaries: Sequence[str], k: int = 2) -> list[str]:
    """The ``k`` summaries sharing the most phrases with the rest of their group (Jaccard)."""
    uniq = list(dict.fromkeys(s.strip() for s in summaries if s and s.strip()))
    if len(uniq) <= k:
        return uniq
    feats = [aspect_phrases(s) | {(t,) for t in tokenize(s)} for s in uniq]

    def score(i: int) -> float:
        sims = [
            len(feats[i] & feats[j]) / len(feats[i] | feats[j]) if feats[i] | feats[j] else 0.0
            for j in range(len(uniq))
            if j != i
        ]
        return sum(sims) / len(sims)

    ranked = sorted(range(len(uniq)), key=lambda i: (-score(i), len(uniq[i])))
    return [uniq[i] for i in ranked[:k]]


def _call(model: Any, method: str, texts: list[str]) -> list[str]:
    fn: Callable[[list[str]], list[str]] = getattr(model, method, model)
    return [str(x) for x in fn(texts)]


def _labels(df: pd.DataFrame, sentiment: Any) -> tuple[list[str | None], str]:
    """Model, else ``label``, else ``rating``, else the scored dataset's predicted ``sentiment``."""
    if sentiment is not None:
        return list(_call(sentiment, "predict", df["text"].astype(str).tolist())), "model"
    if "label" in df.columns and df["label"].notna().all():
        return df["label"].astype(str).tolist(), "label"
    predicted = predicted_labels(df)
    if predicted is not None and rating_labels(df) is None:  # no rating at all: the prediction speaks
        return predicted.tolist(), "predicted"
    if "rating" in df.columns:
        return [None if pd.isna(r) else rating_to_label(float(r)) for r in df["rating"]], "rating"
    raise ReviewOpsError(
        "no sentiment source: pass a sentiment model, or data with `label`, `rating` or a predicted `sentiment`"
    )


def _predicted_next_to(df: pd.DataFrame, labels: list[str | None], source: str) -> dict[str, Any]:
    """The predicted sentiment mix and its agreement with the rated labels, when the rows have both (else None)."""
    predicted = predicted_labels(df) if source in ("label", "rating") else None
    if predicted is None:
        return {"predicted_sentiment": None, "agreement": None}
    counts, shares = _sentiment_mix(predicted.tolist())
    return {
        "predicted_sentiment": {"counts": counts, "shares": {k: round(v, 4) for k, v in shares.items()}},
        "agreement": agreement(pd.Series(labels, index=df.index, dtype=object), predicted),
    }


def _summaries(df: pd.DataFrame, summarizer: Any) -> tuple[list[str], str]:
    from reviewops.evaluation.baselines import lead_n

    if summarizer is not None:
        return _call(summarizer, "summarize", df["text"].astype(str).tolist()), "model"
    if "summary" in df.columns and df["summary"].notna().any():
        fallback = lead_n(df["text"].astype(str).tolist())
        return [
            str(s) if isinstance(s, str) and s.strip() else f for s, f in zip(df["summary"], fallback, strict=True)
        ], "data"
    return lead_n(df["text"].astype(str).tolist()), "lead"


_TEMPLATES = {
    # head, pros, cons, quotes label, quote wrapper, list separator, quote separator, sentence joiner
    "zh": (
        "共{n}条评价，好评{positive}%，中评{neutral}%，差评{negative}%",
        "（平均评分{avg:.1f}）",
        "。",
        "优点：",
        "缺点：",
        "代表评价：",
        "「{}」",
        "、",
        "；",
        "",
    ),
    "en": (
        "{n} reviews: {positive}% positive, {neutral}% neutral, {negative}% negative",
        " (average rating {avg:.1f})",
        ".",
        "Pros: ",
        "Cons: ",
        "Typical: ",
        '"{}"',
        ", ",
        "; ",
        " ",
    ),
}


def _condensed(
    lang: str,
    n: int,
    shares: dict[str, float],
    avg: float | None,
    pros: list[dict[str, Any]],
    cons: list[dict[str, Any]],
    reps: dict[str, list[str]],
) -> str:
    head, avg_t, end, pros_t, cons_t, quotes_t, quote, sep, qsep, join = _TEMPLATES["zh" if lang == "zh" else "en"]
    pct = {k: round(100 * v) for k, v in shares.items()}
    parts = [head.format(n=n, **pct) + (avg_t.format(avg=avg) if avg is not None else "") + end]
    for label, items in ((pros_t, pros), (cons_t, cons)):
        if items:
            parts.append(label + sep.join(p["phrase"] for p in items) + end)
    quotes = reps.get("positive", [])[:1] + reps.get("negative", [])[:1]
    if quotes:
        parts.append(quotes_t + qsep.join(quote.format(q) for q in quotes) + end)
    return join.join(parts)


def summarize_product(
    df_for_product: pd.DataFrame, summarizer: Any = None, sentiment: Any = None, top_k: int = 5
) -> dict[str, Any]:
    """Summarize all reviews of one product.

    Args:
        df_for_product: that product's rows (``text``; optional ``product_id``, ``summary``,
            ``label``, ``rating``, ``language``).
        summarizer: a :class:`~reviewops.models.summarizer.Summarizer` (or any ``texts -> summaries``
            callable); without one, the ``summary`` column (lead-8 where empty) is used.
        sentiment: a :class:`~reviewops.models.sentiment.SentimentClassifier` (or a callable);
            without one, ``label``, else ``rating`` (1–2 negative, 3 neutral, 4–5 positive),
            else the predicted ``sentiment`` of the scored dataset (rows without any rating).
        top_k: how many pros and cons to return.

    Returns:
        ``product_id``, ``n_reviews``, ``language``, ``sentiment_counts``/``sentiment_shares``
        (over reviews with a known label), ``average_rating`` (None without ratings), ``pros``
        and ``cons`` (``[{"phrase", "reviews"}]``), ``representative`` summaries per side,
        ``summary`` (the condensed text, in the product's main language), and the sources
        used for labels and summaries (``label_source``: model, label, rating or predicted).
        When the rows carry ratings and a predicted ``sentiment`` both, ``predicted_sentiment``
        (``counts``, ``shares``) and ``agreement`` (:func:`reviewops.scoring.sources.agreement`)
        sit beside the rating-based mix; both are None otherwise.

    Raises:
        ReviewOpsError: no rows, no ``text`` column, or no way to get sentiment.
    """
    df = _product_rows(df_for_product)
    texts = df["text"].astype(str).tolist()
    labels, label_source = _labels(df, sentiment)
    summaries, summary_source = _summaries(df, summarizer)
    counts, shares = _sentiment_mix(labels)
    avg = _average_rating(df)
    lang = _main_language(df, texts)
    pros, cons, reps = _sides(summaries, texts, labels, top_k)
    product_id = str(df["product_id"].iloc[0]) if "product_id" in df.columns else None
    return {
        "product_id": product_id,
        "n_reviews": int(len(df)),
        "language": lang,
        "sentiment_counts": counts,
        "sentiment_shares": {k: round(v, 4) for k, v in shares.items()},
        "average_rating": None if avg is None or math.isnan(avg) else round(avg, 3),
        "pros": pros,
        "cons": cons,
        "representative": reps,
        "summary": _condensed(lang, len(df), shares, avg, pros, cons, reps),
        "label_source": label_source,
        "summary_source": summary_source,
        **_predicted_next_to(df, labels, label_source),
    }


def _product_rows(df_for_product: pd.DataFrame | None) -> pd.DataFrame:
    """The product's rows, renumbered from 0.

    Raises:
        ReviewOpsError: no rows, or no ``text`` column.
    """
    if df_for_product is None or len(df_for_product) == 0:
        raise ReviewOpsError("no reviews for this product; check the product id and the data file")
    if "text" not in df_for_product.columns:
        raise ReviewOpsError("product rows need a `text` column")
    return df_for_product.reset_index(drop=True)


def _sentiment_mix(labels: list[str | None]) -> tuple[dict[str, int], dict[str, float]]:
    """Counts and shares per label, over the reviews whose label is known."""
    known = [lab for lab in labels if lab is not None]
    counts = {lab: known.count(lab) for lab in LABELS}
    shares = {lab: (counts[lab] / len(known) if known else 0.0) for lab in LABELS}
    return counts, shares


def _average_rating(df: pd.DataFrame) -> float | None:
    """Mean of the numeric ``rating`` values; None without any."""
    ratings = pd.to_numeric(df["rating"], errors="coerce") if "rating" in df.columns else pd.Series(dtype=float)
    return float(ratings.mean()) if ratings.notna().any() else None


def _main_language(df: pd.DataFrame, texts: list[str]) -> str:
    """The ``language`` column's most common value, else the most common detected language."""
    if "language" in df.columns and df["language"].notna().any():
        return str(df["language"].mode().iloc[0])
    return Counter(detect_language(t) for t in texts).most_common(1)[0][0]


def _sides(
    summaries: list[str], texts: list[str], labels: list[str | None], top_k: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, list[str]]]:
    """Pros (distinctive in positive reviews), cons (in negative ones) and representative summaries per side."""
    docs = [f"{s}\n{t}" for s, t in zip(summaries, texts, strict=True)]
    pos = [d for d, lab in zip(docs, labels, strict=True) if lab == "positive"]
    neg = [d for d, lab in zip(docs, labels, strict=True) if lab == "negative"]
    pros = distinctive_phrases(pos, neg, top_k)
    cons = distinctive_phrases(neg, pos, top_k)
    reps = {
        side: representative([s for s, lab in zip(summaries, labels, strict=True) if lab == side])
        for side in ("positive", "negative")
    }
    return pros, cons, reps
