"""Tests for the seeded synthetic review generator."""

from __future__ import annotations

import csv
import hashlib
import os
import re
import subprocess
import sys
import time

import pandas as pd
import pytest

from reviewops.data.generate import COLUMNS, SCENARIOS, generate_reviews, write_generated
from reviewops.data.mess import MESS_RATES
from reviewops.errors import ReviewOpsError
from reviewops.text import CJK_CHAR

ROWS = 3000
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
HTML = r"<br />|<b>|&quot;|&amp;|<a href="
PII = r"[\w.]+\d*@example\.com|\+1 555-\d{3}-\d{4}|卖家电话1\d{10}|https://photos\.example\.com/u/\d+"


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return generate_reviews(ROWS, seed=42)


@pytest.fixture(scope="module")
def big_base() -> pd.DataFrame:
    return generate_reviews(20_000, seed=1)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """Rows none of the injected mess touched (as far as the columns can tell)."""
    text = df["text"]
    ok = (
        df["rating"].between(1, 5)
        & df["language"].isin(["en", "zh"])
        & df["timestamp"].str.match(ISO)
        & (text.str.strip() != "")
        & (text == text.str.strip())
        & (text.str.len() < 2000)
        & ~text.str.contains(HTML)
        & ~text.str.contains(PII)
        & ~text.str.endswith("!!!")
    )
    return df[ok]


def test_columns_and_types(base):
    assert list(base.columns) == COLUMNS
    assert len(base) == ROWS
    assert base["rating"].dtype.kind == "i"
    assert base["product_id"].str.match(r"^P-[A-Z]{3}-\d{4}$").all()
    assert base["review_id"].str.match(r"^R-\d{8}$").all()
    assert int(base["product_id"].str[-4:].astype(int).max()) <= 80


def test_same_seed_same_bytes_different_seed_different(tmp_path):
    a = write_generated(tmp_path / "a", 500, seed=7)
    b = write_generated(tmp_path / "b", 500, seed=7)
    c = write_generated(tmp_path / "c", 500, seed=8)
    assert a.name == "reviews_base.csv"
    assert _sha(a) == _sha(b)
    assert _sha(a) != _sha(c)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["reviews_base.csv"]  # no temp file left


def test_same_bytes_in_another_process_with_other_hash_seed(tmp_path):
    here = write_generated(tmp_path / "here", 300, seed=11, scenario="new_category")
    code = (
        "import sys; from pathlib import Path; from reviewops.data.generate import write_generated; "
        "write_generated(Path(sys.argv[1]), 300, seed=11, scenario='new_category')"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], check=True, env=env)
    assert _sha(here) == _sha(tmp_path / "there" / "reviews_new_category.csv")


def test_file_matches_dataframe_and_uses_lf(tmp_path):
    path = write_generated(tmp_path, 400, seed=3, scenario="language_sentiment_shift")
    assert path == tmp_path / "reviews_language_sentiment_shift.csv"
    raw = path.read_bytes()
    assert b"\r" not in raw  # line ends are \n
    assert raw.startswith(b"review_id,product_id,category,text,summary,rating,timestamp,language\n")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    df = generate_reviews(400, seed=3, scenario="language_sentiment_shift")
    assert rows[0] == COLUMNS
    assert len(rows) == 401
    expected = df.astype(str).values.tolist()
    assert rows[1:] == expected


def test_unknown_scenario_names_valid_ones():
    with pytest.raises(ReviewOpsError) as err:
        generate_reviews(10, seed=1, scenario="nope")
    for name in SCENARIOS:
        assert name in str(err.value)
    assert {"base", "new_category", "language_sentiment_shift"} <= set(SCENARIOS)


@pytest.mark.parametrize("kwargs", [{"rows": 0}, {"rows": 10, "zh_share": 1.5}, {"rows": 10, "zh_share": -0.1}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ReviewOpsError):
        generate_reviews(seed=1, **kwargs)


def test_rating_distribution_is_store_like(big_base):
    clean = big_base[big_base["rating"].between(1, 5)]
    share = clean["rating"].value_counts(normalize=True)
    for stars, expected in {5: 0.55, 4: 0.18, 3: 0.09, 2: 0.07, 1: 0.11}.items():
        assert share[stars] == pytest.approx(expected, abs=0.02), stars


def test_categories_and_products(big_base):
    cats = big_base["category"].value_counts(normalize=True)
    assert set(cats.index) == {"electronics", "grocery", "apparel", "home_kitchen", "beauty", "books"}
    assert cats.min() > 0.08
    per_cat = big_base.groupby("category")["product_id"].nunique()
    assert per_cat.between(30, 80).all(), per_cat.to_dict()
    # the code in the id matches the category
    assert (
        big_base["product_id"].str[2:5]
        == big_base["category"].map(
            {
                "electronics": "ELE",
                "grocery": "GRO",
                "apparel": "APP",
                "home_kitchen": "HOM",
                "beauty": "BEA",
                "books": "BOO",
            }
        )
    ).all()


def test_languages_and_chinese_text(base):
    langs = base["language"].value_counts(normalize=True)
    assert langs["zh"] == pytest.approx(0.2, abs=0.03)
    assert langs["en"] > 0.7
    zh = _clean(base)[lambda d: d["language"] == "zh"]
    assert len(zh) > 400
    assert zh["text"].map(lambda t: bool(CJK_CHAR.search(t))).all()
    assert zh["summary"].map(lambda t: bool(CJK_CHAR.search(t))).all()
    en = _clean(base)[lambda d: d["language"] == "en"]
    assert not en["text"].map(lambda t: bool(CJK_CHAR.search(t))).any()


def test_zh_share_knob():
    assert set(generate_reviews(500, seed=2, zh_share=0.0)["language"]) <= {"en", "fr", "es"}
    all_zh = generate_reviews(500, seed=2, zh_share=1.0)
    assert (all_zh["language"] == "zh").mean() > 0.95


def test_titles_are_short_and_bodies_have_one_to_six_sentences(base):
    clean = _clean(base)
    en, zh = clean[clean["language"] == "en"], clean[clean["language"] == "zh"]
    assert en["summary"].str.split().str.len().between(2, 8).all()
    assert zh["summary"].str.len().between(4, 12).all()
    # a sentence ends in punctuation, or the text ends without it (near-duplicates drop it)
    en_sentences = en["text"].str.count(r"[.!?]+(?:\s|$)|[^.!?\s]$")
    zh_sentences = zh["text"].str.count(r"[。！.!]+|[^。！.!\s]$")
    assert en_sentences.between(1, 6).all()
    assert zh_sentences.between(1, 6).all()
    assert en_sentences.nunique() >= 5


def test_sentiment_of_text_and_title_follows_rating(big_base):
    clean = _clean(big_base)
    en = clean[clean["language"] == "en"]
    five, one = en[en["rating"] == 5], en[en["rating"] == 1]
    neg_words = r"(?i)waste|terrible|disappoint|do not buy|save your money|returning it|never again"
    pos_words = r"(?i)love|highly recommend|five stars|exceeded|would definitely buy"
    assert not five["summary"].str.contains(neg_words).any()
    assert not five["text"].str.contains(r"Save your money|Returning it|Never again").any()
    assert not one["summary"].str.contains(pos_words).any()
    assert not one["text"].str.contains(r"Highly recommend|Would definitely buy again").any()
    zh = clean[clean["language"] == "zh"]
    assert not zh[zh["rating"] == 5]["summary"].str.contains("失望|别买|退货|太差").any()
    assert not zh[zh["rating"] == 1]["summary"].str.contains("满意|推荐|好评").any()
    # three stars are mixed: a good point and a bad one joined by a contrast
    three = clean[(clean["rating"] == 3)]
    contrast = three["text"].str.contains(r"But |However, |That said, |但是|不过|可惜")
    assert contrast.mean() > 0.9


def test_timestamps_cover_two_years(base):
    ok = base["timestamp"][base["timestamp"].str.match(ISO)]
    when = pd.to_datetime(ok, utc=True)
    assert when.min() < pd.Timestamp("2023-02-01", tz="UTC")
    assert when.max() > pd.Timestamp("2024-12-01", tz="UTC")
    assert when.max() < pd.Timestamp("2025-01-01", tz="UTC")


def test_messy_rows_at_fixed_rates(base):
    expected = {kind: round(rate * ROWS) for kind, rate in MESS_RATES.items()}
    text = base["text"]
    assert text.str.contains(HTML).sum() == expected["html"]
    assert text.str.contains(PII).sum() == expected["pii"]
    assert (text.str.strip() == "").sum() == expected["empty_text"]
    assert (~base["rating"].between(1, 5)).sum() == expected["rating_out_of_range"]
    assert set(base["rating"][~base["rating"].between(1, 5)]) <= {0, 6, -1, 10}
    assert (~base["timestamp"].str.match(ISO)).sum() == expected["bad_timestamp"]
    assert (~base["language"].isin(["en", "zh"])).sum() == expected["other_language"]
    assert set(base["language"]) - {"en", "zh"} <= {"fr", "es"}
    assert base["review_id"].duplicated().sum() == expected["duplicate_review_id"]
    assert (text.str.len() > 20_000).sum() == expected["long_text"]
    assert 0 < expected["long_text"] <= 5

    exact = base.duplicated(subset=["product_id", "text"]) & (text.str.strip() != "")
    assert exact.sum() >= expected["exact_duplicate"]
    groups = base[base.duplicated(subset=["product_id", "text"], keep=False) & (text.str.strip() != "")]
    ids = groups.groupby(["product_id", "text"])["review_id"].agg(["nunique", "size"])
    assert (ids["nunique"] == ids["size"]).mean() > 0.9  # a duplicate row gets a new review_id
    squashed = text.str.lower().str.replace(r"[\s\W_]+", "", regex=True)
    near = pd.DataFrame({"p": base["product_id"], "t": squashed}).duplicated() & (squashed != "")
    assert near.sum() >= expected["exact_duplicate"] + expected["near_duplicate"]
    assert (near & ~exact).sum() >= expected["near_duplicate"]

    messy_share = sum(expected.values()) / ROWS
    assert 0.1 < messy_share < 0.2


def test_every_mess_kind_appears_in_a_small_batch():
    df = generate_reviews(150, seed=5)
    assert (df["text"].str.len() > 20_000).sum() == 1
    assert df["review_id"].duplicated().sum() == 1
    assert (df["text"].str.strip() == "").sum() >= 1


def test_scenarios_shift_categories_languages_and_sentiment(base):
    new = generate_reviews(ROWS, seed=42, scenario="new_category")
    shift = generate_reviews(ROWS, seed=42, scenario="language_sentiment_shift")

    assert "pet_supplies" not in set(base["category"])
    assert (new["category"] == "pet_supplies").mean() == pytest.approx(0.7, abs=0.04)
    pets = _clean(new)[lambda d: (d["category"] == "pet_supplies") & (d["language"] == "en")]
    assert pets["text"].str.contains(r"(?i)dog|cat|puppy|pet").mean() > 0.5

    def negative(df):
        return df["rating"].between(1, 2).mean()

    assert (shift["language"] == "zh").mean() > 0.6
    assert (base["language"] == "zh").mean() < 0.25
    assert negative(shift) > 0.5
    assert negative(base) < 0.25

    delivery = r"(?i)deliver|courier|shipping|tracking|arrived|package|物流|快递|签收|到货"
    neg_shift = shift[shift["rating"].between(1, 2)]
    neg_base = base[base["rating"].between(1, 2)]
    assert neg_shift["text"].str.contains(delivery).mean() > 0.7
    assert neg_base["text"].str.contains(delivery).mean() < 0.5


def test_generation_is_fast():
    start = time.perf_counter()
    df = generate_reviews(100_000, seed=9)
    elapsed = time.perf_counter() - start
    assert len(df) == 100_000
    assert elapsed < 30, f"100k rows took {elapsed:.1f}s; 1M rows must stay well under a minute"


def test_text_has_no_unintended_placeholders(base):
    assert not base["text"].str.contains(r"\{n\}").any()
    assert not base["summary"].str.contains(r"\{n\}").any()
    assert not re.search(r"\s{3,}\S", " ".join(_clean(base)["text"].head(200)))
