"""Seeded synthetic product reviews: the embedded default data set and the drift scenarios.

Reviews are composed from hand-written English and Chinese phrase tables
(:mod:`reviewops.data.templates`, :mod:`reviewops.data.templates_zh`) about category-specific
and shop-wide aspects (battery, taste, fit... delivery, packaging, customer service), written
to read like real store reviews rather than to be easy: a review is usually written in the tone
of its star rating but sometimes in a neighbouring one (real ratings are noisy); good reviews
mention a flaw now and then and bad ones a good point; 3-star reviews weigh pros against cons
or say "it's okay"; negation ("not bad at all", "not worth it", "没有想象中好"), sarcasm in
some negative reviews, one-liners to paragraphs with an update, and a casual register with
typos in a minority. Titles carry the review's polarity and content: a 1-2 star review never
gets an upbeat title, a mixed one often names its pro and its con.
A fixed share of rows carries the mess real exports have (HTML, PII, duplicates, empty
bodies, bad ratings/timestamps, other languages; :mod:`reviewops.data.mess`) so validation
and preprocessing have something to catch. ``benchmarks/generator_realism.py`` measures how
hard the result is for a simple model, and how that model then does on real reviews.

Why this module is long: the review composer (what a review says, then how it is written in
each language, then its title) is one seeded state machine over a shared ``random.Random``;
split across modules its draw order, which fixes the bytes for every seed, would be harder
to follow.

Only ``random.Random(seed)`` drives the output, and the CSV is written with the ``csv``
module, so the same arguments give the same bytes on every machine and pandas version.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import re
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import pandas as pd

from reviewops.data.mess import add_mess
from reviewops.data.templates import (
    ASIDES_EN,
    BUT_EN,
    CATEGORIES,
    CLOSERS_EN,
    CONTEXT_EN,
    DELIVERY,
    DOWNSIDE_EN,
    FRAMES_EN,
    GENERIC_ASPECTS,
    ONE_LINERS_EN,
    OPENERS_EN,
    SARCASM_EN,
    SHORT_TAILS_EN,
    TITLES_EN,
    TYPOS_EN,
    UPDATE_EN,
    UPSIDE_EN,
    Aspect,
    Category,
)
from reviewops.data.templates_zh import (
    ASIDES_ZH,
    BUT_ZH,
    CASUAL_ZH,
    CLOSERS_ZH,
    CONTEXT_ZH,
    DOWNSIDE_ZH,
    FRAMES_ZH,
    ONE_LINERS_ZH,
    OPENERS_ZH,
    SARCASM_ZH,
    SHORT_TAILS_ZH,
    TITLES_ZH,
    UPDATE_ZH,
    UPSIDE_ZH,
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


# How often a review is written in a neighbouring tone (real star ratings are noisy: some
# 4-star reviews read like 3-star ones and the other way round). Negative ratings never get a
# positive tone and positive ones never a negative tone, so a title can always follow the text.
_TONE_SHIFT: dict[int, tuple[tuple[int, float], ...]] = {
    1: ((2, 0.25),),
    2: ((1, 0.20), (3, 0.12)),
    3: ((2, 0.12), (4, 0.12)),
    4: ((3, 0.10), (5, 0.30)),
    5: ((4, 0.30),),
}
# Chinese store ratings are noisier still: shoppers give 4 stars to lukewarm text ("给个好评吧",
# cash-back for praise) and 2 stars to "一般般" reviews.
_TONE_SHIFT_ZH = {**_TONE_SHIFT, 2: ((1, 0.20), (3, 0.18)), 4: ((3, 0.18), (5, 0.30))}
_ONE_LINER, _LONG = 0.16, 0.10  # shares of one-line and paragraph-long reviews
_POINTS_NORMAL = [0.22, 0.38, 0.25, 0.15]  # aspect points 1..4 in a normal review
_SARCASM, _CASUAL = 0.12, 0.12  # share of negative reviews with sarcasm; share of casual reviews
_EN_END = {1: ".!", 2: ".", 3: ".", 4: ".!", 5: "!."}
_ZH_END = {
    1: ("！", "。", "", "！！！"),
    2: ("。", "", "…"),
    3: ("。", "", "…"),
    4: ("。", "！", "", "~"),
    5: ("！", "。", "~", "！！"),
}
_WORD = re.compile(r"[A-Za-z']+")


@dataclass
class _Plan:
    """What one review says: its tone, its (aspect, polarity) points (main first) and its shape."""

    tone: int
    points: list[tuple[Aspect, int]]
    shape: str  # "one", "normal" or "long"
    sarcastic: bool
    casual: bool

    def side(self, sign: int) -> list[Aspect]:
        return [a for a, p in self.points if p == sign]


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
        self.points_cum, self.points_total = _cum(_POINTS_NORMAL)

    def compose(self, cat: Category, noun: str, rating: int, zh: bool) -> tuple[str, str]:
        plan = self._plan(cat, rating, zh)
        if zh:
            body = self._zh_one(plan) if plan.shape == "one" else self._zh_body(plan)
        else:
            body = self._en_one(plan) if plan.shape == "one" else self._en_body(plan)
        title = self._title(plan, rating, zh)
        if plan.casual and not zh and self.rng.random() < 0.5:
            title = title.lower()
        return body.replace("{n}", noun), title.replace("{n}", noun)

    # -- what to say ----------------------------------------------------------------------------

    def _tone(self, rating: int, zh: bool) -> int:
        r = self.rng.random()
        for tone, p in (_TONE_SHIFT_ZH if zh else _TONE_SHIFT)[rating]:
            if r < p:
                return tone
            r -= p
        return rating

    def _plan(self, cat: Category, rating: int, zh: bool) -> _Plan:
        rng, rand = self.rng, self.rng.random
        tone = self._tone(rating, zh)
        forced = rating <= 2 and rand() < self.spec.negative_delivery_share
        main = DELIVERY if forced else (rng.choice(cat.aspects) if rand() < 0.7 else rng.choice(GENERIC_ASPECTS))
        r = rand()
        shape = "one" if r < _ONE_LINER and not forced else ("long" if r > 1 - _LONG else "normal")
        if shape == "one":
            k = 1
        elif shape == "long":
            k = 4 + rng.randrange(3)
        else:
            k = _pick(rng, self.points_cum, self.points_total) + 1 + (tone == 3)  # a mixed review needs two
        pool = [a for a in cat.aspects + GENERIC_ASPECTS if a is not main]
        others = rng.sample(pool, min(k - 1, len(pool)))
        if zh and others and rand() < 0.5 and not any(a in GENERIC_ASPECTS for a in others):
            others[-1] = rng.choice([a for a in GENERIC_ASPECTS if a is not main])  # 物流/包装/客服 talk
        points = list(zip([main, *others], self._polarities(tone, len(others) + 1), strict=True))
        return _Plan(tone, points, shape, tone <= 2 and rand() < _SARCASM, rand() < _CASUAL)

    def _polarities(self, tone: int, k: int) -> list[int]:
        """+1 good, -1 bad, 0 okay per point: mostly the tone's side, with the minority view real reviews have."""
        rand, choice = self.rng.random, self.rng.choice
        if tone == 3:
            if k == 1 or rand() < 0.3:  # lukewarm: "it's okay", maybe one real pro or con
                pols = [0] * k
                if k > 1 and rand() < 0.5:
                    pols[-1] = choice((1, -1))
                return pols
            first = choice((1, 1, -1))
            return [first, -first] + [choice((1, -1, 0)) for _ in range(k - 2)]
        sign = 1 if tone >= 4 else -1
        pols = [sign] * k
        minority = {5: 0.15, 4: 0.6, 2: 0.45, 1: 0.15}[tone]
        if k > 1 and rand() < minority:
            pols[-1] = choice((-sign, -sign, 0)) if tone in (2, 4) else (choice((-1, 0)) if tone == 5 else 1)
        return pols

    # -- English --------------------------------------------------------------------------------

    def _en_sentence(self, asp: Aspect, pol: int) -> str:
        choice = self.rng.choice
        if asp.subject_en and self.rng.random() < 0.3:
            return choice(FRAMES_EN[0 if pol > 0 else (1 if pol < 0 else 2)]).replace("{s}", asp.subject_en)
        return choice(asp.en_pos if pol > 0 else (asp.en_neg if pol < 0 else asp.en_meh))

    def _en_body(self, plan: _Plan) -> str:
        rand, choice = self.rng.random, self.rng.choice
        long = plan.shape == "long"
        out = [choice(OPENERS_EN[plan.tone])] if rand() < (0.8 if long else 0.4) else []
        if rand() < (0.6 if long else 0.15):
            out.append(choice(CONTEXT_EN))
        prev = 0
        for asp, pol in plan.points:
            s = self._en_sentence(asp, pol)
            if prev and pol and pol != prev:
                if out and "but" not in out[-1] and rand() < 0.3:  # "..., but the strap broke."
                    out[-1] = out[-1].rstrip(".!") + ", but " + _lower_first(s)
                    prev = pol
                    continue
                lead = (
                    DOWNSIDE_EN if pol < 0 and plan.tone >= 4 else (UPSIDE_EN if pol > 0 and plan.tone <= 2 else BUT_EN)
                )
                s = choice(lead) + _lower_first(s)
            out.append(s)
            prev = pol or prev
        if plan.sarcastic:
            out.insert(_rng_pos(self.rng, out), choice(SARCASM_EN))
        if long:
            out.append(self._update(plan, out, zh=False))
        if rand() < (0.7 if long else 0.4):
            out.append(choice(CLOSERS_EN[plan.tone]))
        text = " ".join(out)
        return self._en_casual(text) if plan.casual else text

    def _en_one(self, plan: _Plan) -> str:
        rand, choice = self.rng.random, self.rng.choice
        main, pol = plan.points[0]
        r = rand()
        if r < 0.4:
            text = choice(ONE_LINERS_EN[plan.tone])
            plan.points.clear()  # says nothing about an aspect, so neither may its title
        elif r < 0.7 and pol:
            text = choice(main.title_en_pos if pol > 0 else main.title_en_neg) + choice(_EN_END[plan.tone])
        else:
            text = self._en_sentence(main, pol)
        tail = choice(SHORT_TAILS_EN[plan.tone])
        if rand() < 0.5 and tail not in text:
            text += " " + tail
        return self._en_casual(text) if plan.casual else text

    def _en_casual(self, text: str) -> str:
        rand, choice = self.rng.random, self.rng.choice
        text = _WORD.sub(lambda m: TYPOS_EN.get(m.group(), m.group()) if rand() < 0.6 else m.group(), text)
        if rand() < 0.5:
            text = text.lower()
        if rand() < 0.4:
            text = text.rstrip(".!") + choice(("!!!", "...", "", " " + choice(ASIDES_EN)))
        return text

    def _update(self, plan: _Plan, said: list[str], zh: bool) -> str:
        """A long review's follow-up on its main aspect, in the review's tone, not repeating a sentence."""
        main, pol = plan.points[0]
        later = pol if plan.tone == 3 else (1 if plan.tone >= 4 else -1)
        for _ in range(3):
            s = self._zh_clause(main, later) if zh else _lower_first(self._en_sentence(main, later))
            if not any(s in o or s[1:] in o for o in said):
                break
        return self.rng.choice(UPDATE_ZH) + s if zh else self.rng.choice(UPDATE_EN) + " " + s

    # -- Chinese --------------------------------------------------------------------------------

    def _zh_clause(self, asp: Aspect, pol: int) -> str:
        choice = self.rng.choice
        if asp.subject_zh and self.rng.random() < 0.3:
            return choice(FRAMES_ZH[0 if pol > 0 else (1 if pol < 0 else 2)]).replace("{s}", asp.subject_zh)
        return choice(asp.zh_pos if pol > 0 else (asp.zh_neg if pol < 0 else asp.zh_meh))

    def _zh_body(self, plan: _Plan) -> str:
        rand, choice = self.rng.random, self.rng.choice
        long = plan.shape == "long"
        out = [choice(OPENERS_ZH[plan.tone])] if rand() < (0.7 if long else 0.4) else []
        if rand() < (0.6 if long else 0.2):
            out.insert(0, choice(CONTEXT_ZH))
        prev = 0
        for asp, pol in plan.points:
            c = self._zh_clause(asp, pol)
            if prev and pol and pol != prev:
                lead = (
                    DOWNSIDE_ZH if pol < 0 and plan.tone >= 4 else (UPSIDE_ZH if pol > 0 and plan.tone <= 2 else BUT_ZH)
                )
                c = choice(lead) + c
            out.append(c)
            prev = pol or prev
        if plan.sarcastic:
            out.insert(_rng_pos(self.rng, out), choice(SARCASM_ZH))
        if long:
            out.append(self._update(plan, out, zh=True))
        if rand() < (0.8 if long else 0.55):
            out.append(choice(CLOSERS_ZH[plan.tone]))
        return self._zh_join(out, plan)

    def _zh_one(self, plan: _Plan) -> str:
        choice = self.rng.choice
        main, pol = plan.points[0]
        if self.rng.random() < 0.45:
            plan.points.clear()  # says nothing about an aspect, so neither may its title
            return self._zh_join([choice(ONE_LINERS_ZH[plan.tone])], plan)
        return self._zh_join([self._zh_clause(main, pol), choice(SHORT_TAILS_ZH[plan.tone])], plan)

    def _zh_join(self, clauses: list[str], plan: _Plan) -> str:
        """Comma-spliced clauses, a full stop now and then, the tone's ending; casual spellings for some."""
        rand, choice = self.rng.random, self.rng.choice
        if plan.casual:
            clauses = [_casual_zh(rand, c) for c in clauses]
            if rand() < 0.6:
                clauses.append(choice(ASIDES_ZH[plan.tone]))
        comma = "," if plan.casual and rand() < 0.5 else "，"
        text = clauses[0]
        for c in clauses[1:]:
            text += ("。" if rand() < 0.2 else comma) + c
        return text + choice(_ZH_END[plan.tone])

    # -- titles ---------------------------------------------------------------------------------

    def _title(self, plan: _Plan, rating: int, zh: bool) -> str:
        """A title with the review's polarity and content: never upbeat on a 1-2 star review."""
        rand, choice = self.rng.random, self.rng.choice
        titles = TITLES_ZH if zh else TITLES_EN
        pos, neg = plan.side(1), plan.side(-1)
        tone = max(plan.tone, 4) if rating == 5 else min(plan.tone, 2) if rating <= 2 else plan.tone
        if tone <= 2:
            if neg and rand() < 0.65:
                return choice(neg[0].title_zh_neg if zh else neg[0].title_en_neg)
            return choice(titles[tone])
        if pos and neg and ((tone == 3 and rand() < 0.7) or (tone == 4 and rating == 4 and rand() < 0.3)):
            return self._mixed_title(pos[0], neg[0], zh)
        if tone >= 4:
            return (
                choice(pos[0].title_zh_pos if zh else pos[0].title_en_pos)
                if pos and rand() < 0.6
                else choice(titles[tone])
            )
        main, pol = plan.points[0] if plan.points else (None, 1)
        subject = main and (main.subject_zh if zh else main.subject_en)
        if pol == 0 and subject and rand() < 0.4:
            return f"{subject}一般般" if zh else f"{subject.capitalize()} is just okay"
        return choice(titles[3])

    def _mixed_title(self, good: Aspect, bad: Aspect, zh: bool) -> str:
        choice = self.rng.choice
        r = self.rng.random()
        if zh:
            if r < 0.3:
                return f"{good.label_zh}不错，{bad.label_zh}一般"
            return choice(good.title_zh_pos) + choice(("，但是", "，就是", "，可惜")) + choice(bad.title_zh_neg)
        if r < 0.3:
            return f"Good {good.label_en}, poor {bad.label_en}"
        return choice(good.title_en_pos) + choice((", but ", ", ")) + _lower_first(choice(bad.title_en_neg))


def _rng_pos(rng: random.Random, out: list[str]) -> int:
    """Where a sarcastic remark goes: first, or right after the opener, or last."""
    return rng.choice((0, min(1, len(out)), len(out)))


def _casual_zh(rand, clause: str) -> str:
    for word, casual in CASUAL_ZH.items():
        if word in clause and rand() < 0.6:
            clause = clause.replace(word, casual)
    return clause


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
