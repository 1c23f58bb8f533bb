"""The mess real exports have, put into synthetic reviews: HTML, PII, duplicates, bad values.

A fixed share of rows (:data:`MESS_RATES`) is overwritten with one kind of mess each, at
positions drawn from the generator's own ``random.Random``, so validation and preprocessing
have something to catch and the output stays a pure function of the seed.
"""

from __future__ import annotations

import random

from reviewops.data.templates import FIRST_NAMES, OTHER_LANGUAGE

# Share of rows of each mess kind; counts are round(rate * rows), disjoint rows, placed by the seed.
MESS_RATES: dict[str, float] = {
    "html": 0.03,
    "pii": 0.03,
    "exact_duplicate": 0.02,
    "near_duplicate": 0.02,
    "empty_text": 0.01,
    "rating_out_of_range": 0.01,
    "bad_timestamp": 0.01,
    "other_language": 0.01,
    "duplicate_review_id": 0.005,
    "long_text": 0.001,
}


def mess_counts(rows: int) -> dict[str, int]:
    """How many rows of each kind of mess a batch of ``rows`` gets (at least one each from 100 rows)."""
    counts = {kind: round(rate * rows) for kind, rate in MESS_RATES.items()}
    if rows >= 100:  # every kind shows up at least once in a batch worth validating
        counts = {kind: max(1, c) for kind, c in counts.items()}
    return counts


def add_mess(rng: random.Random, cols: dict[str, list], rows: int) -> None:
    """Overwrite a fixed, seed-placed set of disjoint rows with one kind of mess each."""
    counts = mess_counts(rows)
    positions = rng.sample(range(rows), sum(counts.values()))
    kind_of: dict[int, str] = {}
    start = 0
    for kind, c in counts.items():
        for row in positions[start : start + c]:
            kind_of[row] = kind
        start += c

    def clean_row() -> int:
        while True:
            j = rng.randrange(rows)
            if j not in kind_of:
                return j

    text, summary, lang = cols["text"], cols["summary"], cols["language"]
    for i in sorted(kind_of):
        kind = kind_of[i]
        zh = lang[i] == "zh"
        if kind == "html":
            text[i] = _add_html(rng, text[i], summary[i], cols["product_id"][i], zh)
        elif kind == "pii":
            text[i] = _add_pii(rng, text[i], zh)
        elif kind in ("exact_duplicate", "near_duplicate"):
            j = clean_row()
            for col in ("product_id", "category", "summary", "rating", "language"):
                cols[col][i] = cols[col][j]
            text[i] = text[j] if kind == "exact_duplicate" else _near_duplicate(rng, text[j])
        elif kind == "empty_text":
            text[i] = rng.choice(("", " ", "   ", "\n", "\t "))
        elif kind == "rating_out_of_range":
            cols["rating"][i] = rng.choice((0, 6, -1, 10))
        elif kind == "bad_timestamp":
            cols["timestamp"][i] = rng.choice(("not a date", "unknown", "2023-13-45"))
        elif kind == "other_language":
            code = rng.choice(tuple(OTHER_LANGUAGE))
            pos, neg, t_pos, t_neg = OTHER_LANGUAGE[code]
            good = cols["rating"][i] >= 3
            text[i] = rng.choice(pos if good else neg)
            summary[i] = rng.choice(t_pos if good else t_neg)
            lang[i] = code
        elif kind == "duplicate_review_id":
            cols["review_id"][i] = cols["review_id"][clean_row()]
        elif kind == "long_text":
            reps = 20_000 // len(text[i]) + 2 + rng.randrange(5)  # always > 20,000 chars
            text[i] = "\n\n".join([text[i]] * reps)


def _add_html(rng: random.Random, body: str, title: str, pid: str, zh: bool) -> str:
    variant = rng.randrange(4)
    if variant == 0:
        return (body.replace("。", "。<br />") if zh else body.replace(". ", ".<br /><br />")) + "<br />"
    if variant == 1:
        return ("<b>追评：</b>" if zh else "<b>Update:</b> ") + body
    if variant == 2:
        tail = (
            f"总结一下：&quot;{title}&quot; &amp; 不多说了"
            if zh
            else f" In short: &quot;{title}&quot; &amp; that's all."
        )
        return body + tail
    link = "商品链接" if zh else "product page"
    return body + f' <a href="https://www.example.com/dp/{pid}">{link}</a>'


def _add_pii(rng: random.Random, body: str, zh: bool) -> str:
    variant = rng.randrange(3)
    if variant == 0:
        email = f"{rng.choice(FIRST_NAMES)}{rng.randrange(100)}@example.com"
        return body + (f"有问题可以发邮件到{email}" if zh else f" Email me at {email} with any questions.")
    if variant == 1:
        if zh:
            return body + f"卖家电话1{rng.choice('3578')}{rng.randrange(10**9):09d}"
        phone = f"+1 555-{rng.randrange(100, 1000)}-{rng.randrange(10000):04d}"
        return body + f" Call the seller at {phone}, they were helpful."
    url = f"https://photos.example.com/u/{rng.randrange(10**6)}"
    return body + (f"实拍图在这里：{url}" if zh else f" Photos here: {url}")


def _near_duplicate(rng: random.Random, body: str) -> str:
    """The same review with other case, whitespace or punctuation (never byte-identical)."""
    variant = rng.randrange(5)
    if variant == 0:
        out = body.lower() if body != body.lower() else body.upper()
    elif variant == 1:
        out = "  " + body.replace(" ", "  ").replace("。", "。 ") + " \n"
    elif variant == 2:
        out = body.rstrip(".。!！") + "!!!"
    elif variant == 3:
        out = body.replace("，", ",").replace("。", ".").replace(", ", ",")
    else:
        out = body.rstrip(".。!！")
    return out if out != body else body + "  "
