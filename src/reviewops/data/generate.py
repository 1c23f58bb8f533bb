"""Seeded synthetic product reviews: the embedded default data set and the drift scenarios.

Reviews are composed from hand-written English and Chinese sentence templates
(:mod:`reviewops.data.templates`) about category-specific aspects (battery, taste, fit,
scent...), with the sentiment of every sentence and of the title following the star rating.
A fixed share of rows carries the mess real exports have (HTML, PII, duplicates, empty
bodies, bad ratings/timestamps, other languages; :mod:`reviewops.data.mess`) so validation
and preprocessing have something to catch.

Only ``random.Random(seed)`` drives the output, and the CSV is written with the ``csv``
module, so the same arguments give the same bytes on every machine and pandas version.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import pandas as pd

from reviewops.data.mess import add_mess
from reviewops.data.templates import (
    CATEGORIES,
    CLOSERS_EN,
    CLOSERS_ZH,
    DELIVERY,
    GENERIC_ASPECTS,
    OPENERS_EN,
    OPENERS_ZH,
    TITLES_EN,
    TITLES_ZH,
    Aspect,
    Category,
)
from reviewops.errors import ReviewOpsError

COLUMNS = ["review_id", "product_id", "category", "text", "summary", "rating", "timestamp", "language"]

SCENARIOS: dict[str, str] = {
    "base": "six established categories, ~80% English / 20% Chinese, ratings skewed positive "
    "like a real store (5 stars 55%, 1 star 11%)",
    "new_category": "a category absent from base (pet_supplies) makes up ~70% of the batch, with "
    "its own products, aspects and vocabulary",
    "language_sentiment_shift": "at least 65% Chinese reviews and a strong shift to negative ratings "
    "(~62% one or two stars), mostly about late or lost deliveries",
}

_BASE_RATINGS = {5: 0.55, 4: 0.18, 3: 0.09, 2: 0.07, 1: 0.11}
_SHIFT_RATINGS = {5: 0.18, 4: 0.10, 3: 0.10, 2: 0.20, 1: 0.42}
_START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
_DAYS = 730
# Sentence counts 1..6.
_SENTENCE_WEIGHTS = [0.12, 0.22, 0.24, 0.20, 0.13, 0.09]

_BASE_CATEGORY_WEIGHTS = {
    "electronics": 0.24,
    "grocery": 0.20,
    "apparel": 0.16,
    "home_kitchen": 0.16,
    "beauty": 0.12,
    "books": 0.12,
}


@dataclass(frozen=True)
class _ScenarioSpec:
    category_weights: dict[str, float]
    rating_weights: dict[int, float]
    min_zh_share: float = 0.0
    negative_delivery_share: float = 0.0  # share of negative reviews whose main aspect is delivery


_SPECS: dict[str, _ScenarioSpec] = {
    "base": _ScenarioSpec(_BASE_CATEGORY_WEIGHTS, _BASE_RATINGS),
    "new_category": _ScenarioSpec(
        {"pet_supplies": 0.70, **{k: v * 0.30 for k, v in _BASE_CATEGORY_WEIGHTS.items()}}, _BASE_RATINGS
    ),
    "language_sentiment_shift": _ScenarioSpec(
        _BASE_CATEGORY_WEIGHTS, _SHIFT_RATINGS, min_zh_share=0.65, negative_delivery_share=0.75
    ),
}


def _cum(weights: list[float]) -> tuple[list[float], float]:
    cum = list(accumulate(weights))
    return cum, cum[-1]


def _pick(rng: random.Random, cum: list[float], total: float) -> int:
    return bisect(cum, rng.random() * total)


def _lower_first(sentence: str) -> str:
    """Lower-case a sentence start so it can follow a connective ("But the ...")."""
    first = sentence.split(" ", 1)[0]
    if first in {"I", "I'm", "I've", "I'd", "I'll"} or (len(first) > 1 and first[1].isupper()):
        return sentence
    return sentence[0].lower() + sentence[1:]


class _Composer:
    """Builds one review body and title per call; all randomness comes from ``rng``."""

    def __init__(self, rng: random.Random, spec: _ScenarioSpec):
        self.rng = rng
        self.spec = spec
        self.sent_cum, self.sent_total = _cum(_SENTENCE_WEIGHTS)

    def compose(self, cat: Category, noun: str, rating: int, zh: bool) -> tuple[str, str]:
        rng = self.rng
        rand = rng.random
        choice = rng.choice
        cat_aspects = cat.aspects
        aspects = cat_aspects + GENERIC_ASPECTS
        polarity = 1 if rating >= 4 else (-1 if rating <= 2 else 0)

        if polarity < 0 and self.spec.negative_delivery_share and rand() < self.spec.negative_delivery_share:
            main = DELIVERY
        elif rand() < 0.7:
            main = choice(cat_aspects)
        else:
            main = choice(GENERIC_ASPECTS)

        n = _pick(rng, self.sent_cum, self.sent_total) + 1
        has_opener = n >= 3 or (n == 2 and rand() < 0.4)
        has_closer = n >= 3 and rand() < 0.5
        k = n - has_opener - has_closer
        if polarity == 0 and k < 2:  # a mixed review needs a good and a bad point
            k = 2
        k = min(k, len(aspects))
        others = rng.sample([a for a in aspects if a is not main], k - 1) if k > 1 else []

        # Each entry: (aspect, polarity, connective kind) -> rendered below per language.
        parts: list[tuple[Aspect, int, str]] = [(main, 1 if polarity >= 0 else -1, "")]
        for i, asp in enumerate(others):
            if polarity == 0:
                if i == 0:
                    parts.append((asp, -1, "but"))
                else:
                    parts.append((asp, 1 if rand() < 0.5 else -1, ""))
            elif rating == 4 and i == len(others) - 1 and rand() < 0.35:
                parts.append((asp, -1, "downside"))
            elif rating == 2 and i == len(others) - 1 and rand() < 0.3:
                parts.append((asp, 1, "fair"))
            else:
                parts.append((asp, polarity, ""))

        if zh:
            body = self._render_zh(parts, rating, noun, has_opener, has_closer)
        else:
            body = self._render_en(parts, rating, noun, has_opener, has_closer)
        title = self._title(main, others[0] if polarity == 0 and others else None, polarity, rating, zh)
        return body, title.replace("{n}", noun)

    def _render_en(self, parts, rating, noun, has_opener, has_closer) -> str:
        choice = self.rng.choice
        out = [choice(OPENERS_EN[rating])] if has_opener else []
        for asp, pol, conn in parts:
            s = choice(asp.en_pos if pol > 0 else asp.en_neg)
            if conn == "but":
                s = choice(("But ", "However, ", "That said, ")) + _lower_first(s)
            elif conn == "downside":
                s = "The only downside: " + _lower_first(s)
            elif conn == "fair":
                s = "To be fair, " + _lower_first(s)
            out.append(s)
        if has_closer:
            out.append(choice(CLOSERS_EN[rating]))
        return " ".join(out).replace("{n}", noun)

    def _render_zh(self, parts, rating, noun, has_opener, has_closer) -> str:
        choice = self.rng.choice
        end = "！" if rating in (1, 5) and self.rng.random() < 0.4 else "。"
        out = [choice(OPENERS_ZH[rating]) + end] if has_opener else []
        for asp, pol, conn in parts:
            s = choice(asp.zh_pos if pol > 0 else asp.zh_neg)
            if conn == "but":
                s = choice(("但是", "不过", "可惜")) + s
            elif conn == "downside":
                s = "美中不足的是" + s
            elif conn == "fair":
                s = "还好" + s
            out.append(s + ("。" if conn else end))
        if has_closer:
            out.append(choice(CLOSERS_ZH[rating]) + end)
        return "".join(out).replace("{n}", noun)

    def _title(self, main: Aspect, con: Aspect | None, polarity: int, rating: int, zh: bool) -> str:
        rand = self.rng.random
        choice = self.rng.choice
        if polarity == 0:
            if con is not None and rand() < 0.5:
                if zh:
                    return f"{main.label_zh}不错，{con.label_zh}一般"
                return f"Good {main.label_en}, poor {con.label_en}"
            return choice(TITLES_ZH[3] if zh else TITLES_EN[3])
        if rand() < 0.55:
            if zh:
                return choice(main.title_zh_pos if polarity > 0 else main.title_zh_neg)
            return choice(main.title_en_pos if polarity > 0 else main.title_en_neg)
        return choice(TITLES_ZH[rating] if zh else TITLES_EN[rating])


def _check_args(rows: int, scenario: str, zh_share: float) -> _ScenarioSpec:
    if scenario not in _SPECS:
        raise ReviewOpsError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
    if rows < 1:
        raise ReviewOpsError(f"rows must be at least 1, got {rows}")
    if not 0.0 <= zh_share <= 1.0:
        raise ReviewOpsError(f"zh_share must be between 0 and 1, got {zh_share}")
    return _SPECS[scenario]


def _generate_columns(rows: int, seed: int, scenario: str, zh_share: float) -> dict[str, list]:
    spec = _check_args(rows, scenario, zh_share)
    rng = random.Random(seed)
    rand = rng.random
    zh_share = max(zh_share, spec.min_zh_share)

    cat_names = list(spec.category_weights)
    cat_cum, cat_total = _cum([spec.category_weights[c] for c in cat_names])
    rating_values = list(spec.rating_weights)
    rating_cum, rating_total = _cum([spec.rating_weights[r] for r in rating_values])
    # Product popularity is long-tailed and independent of the seed, so ids mean the same product
    # (same noun) in every batch.
    products = {}
    for name in cat_names:
        cat = CATEGORIES[name]
        cum, total = _cum([1.0 / k**0.8 for k in range(1, cat.n_products + 1)])
        products[name] = (cat, cum, total)
    days = [(_START + dt.timedelta(days=d)).strftime("%Y-%m-%d") for d in range(_DAYS)]
    composer = _Composer(rng, spec)

    review_id = [f"R-{i:08d}" for i in range(1, rows + 1)]
    product_id, category, text, summary, rating, timestamp, language = [], [], [], [], [], [], []
    for _ in range(rows):
        name = cat_names[_pick(rng, cat_cum, cat_total)]
        cat, cum, total = products[name]
        k = _pick(rng, cum, total) + 1
        zh = rand() < zh_share
        nouns = cat.nouns_zh if zh else cat.nouns_en
        stars = rating_values[_pick(rng, rating_cum, rating_total)]
        body, title = composer.compose(cat, nouns[k % len(nouns)], stars, zh)
        secs = int(rand() * _DAYS * 86400)
        d, s = divmod(secs, 86400)
        h, s = divmod(s, 3600)
        m, s = divmod(s, 60)
        product_id.append(f"P-{cat.code}-{k:04d}")
        category.append(name)
        text.append(body)
        summary.append(title)
        rating.append(stars)
        timestamp.append(f"{days[d]}T{h:02d}:{m:02d}:{s:02d}Z")
        language.append("zh" if zh else "en")

    cols: dict[str, list] = {
        "review_id": review_id,
        "product_id": product_id,
        "category": category,
        "text": text,
        "summary": summary,
        "rating": rating,
        "timestamp": timestamp,
        "language": language,
    }
    add_mess(rng, cols, rows)
    return cols


def generate_reviews(rows: int, seed: int, scenario: str = "base", zh_share: float = 0.2) -> pd.DataFrame:
    """Generate a deterministic batch of synthetic reviews.

    Args:
        rows: number of rows (messy rows included).
        seed: seed of the only random source, ``random.Random(seed)``.
        scenario: one of :data:`SCENARIOS`.
        zh_share: share of Chinese reviews (the ``language_sentiment_shift`` scenario raises it
            to at least 0.65).

    Returns:
        A DataFrame with the columns of :data:`COLUMNS`; ``rating`` is an integer column.

    Raises:
        ReviewOpsError: unknown scenario, ``rows < 1`` or ``zh_share`` outside [0, 1].
    """
    return pd.DataFrame(_generate_columns(rows, seed, scenario, zh_share), columns=COLUMNS)


def write_generated(out_dir: Path, rows: int, seed: int, scenario: str = "base", zh_share: float = 0.2) -> Path:
    """Generate reviews and write them to ``out_dir/reviews_<scenario>.csv``.

    The file is written with the ``csv`` module (UTF-8, ``\\n`` line ends, minimal quoting), not
    pandas, so identical arguments give identical bytes whatever the pandas version.

    Returns:
        The path of the written CSV file.
    """
    cols = _generate_columns(rows, seed, scenario, zh_share)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"reviews_{scenario}.csv"
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(COLUMNS)
        writer.writerows(zip(*(cols[c] for c in COLUMNS), strict=True))
    os.replace(tmp, path)  # readers never see a half-written file
    return path
