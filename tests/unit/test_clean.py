"""Cleaning, PII masking, dedup: nothing lost, counts add up."""

import pandas as pd

from reviewops.config import PreprocessConfig
from reviewops.data.clean import clean_text, dedup_key, mask_pii, preprocess, strip_html


def _frame(rows):
    base = {"product_id": "P1", "summary": "ok", "timestamp": "2024-01-01T00:00:00Z", "language": "en",
            "category": "grocery", "source_file": "f.csv"}
    return pd.DataFrame([{**base, "review_id": f"r{i}", "source_row": i + 1, **row}
                         for i, row in enumerate(rows)])


def test_strip_html_and_entities():
    assert strip_html("Good<br />stuff &amp; <b>cheap</b> &quot;ok&quot;") == 'Good stuff & cheap "ok"'
    assert strip_html("&amp;lt;b&amp;gt;x") == "x"


def test_mask_pii_en_and_zh():
    text = "Mail me at jo.doe@example.com or call (555) 123-4567, see https://shop.example.com/p?1"
    masked = mask_pii(text)
    assert masked == "Mail me at [EMAIL] or call [PHONE], see [URL]"
    assert mask_pii("联系电话13812345678，谢谢") == "联系电话[PHONE]，谢谢"
    # Prices, years and quantities are not phone numbers.
    assert mask_pii("Bought in 2019 for $12.99, pack of 24") == "Bought in 2019 for $12.99, pack of 24"


def test_clean_text_normalizes_whitespace_and_width():
    assert clean_text("  味道　很好！！\n\n Ｇｏｏｄ ") == "味道 很好!! Good"
    assert clean_text(None) == ""


def test_dedup_key_ignores_case_space_punctuation():
    assert dedup_key("Great  coffee!!") == dedup_key("great coffee")
    assert dedup_key("味道很好！") == dedup_key("味道 很好")


def test_preprocess_accounts_for_every_row():
    df = _frame([
        {"text": "Great coffee, fast delivery.", "rating": 5.0},
        {"text": "Great coffee, fast delivery.", "rating": 5.0},         # exact duplicate
        {"text": "great coffee   fast delivery", "rating": 4.0},          # normalized duplicate
        {"text": "<br /><br />", "rating": 3.0},                          # empty after cleaning
        {"text": "Terrible taste, call 555-123-4567", "rating": 1.0},
        {"text": "一般般，价格有点贵", "rating": 3.0, "language": "zh"},
    ])
    result = preprocess(df, PreprocessConfig())
    r = result.report
    assert (r["clean_rows"], r["duplicates"], r["rejected_empty_after_cleaning"]) == (3, 2, 1)
    assert r["duplicates_exact"] == 1 and r["duplicates_normalized"] == 1
    assert sorted(result.duplicates["duplicate_of"]) == ["r0", "r0"]
    assert result.rejected["quarantine_reason"].tolist() == ["text_empty_after_cleaning"]
    assert set(result.clean["review_id"]) | set(result.duplicates["review_id"]) | set(
        result.rejected["review_id"]) == set(df["review_id"])
    labels = dict(zip(result.clean["review_id"], result.clean["label"], strict=True))
    assert labels == {"r0": "positive", "r4": "negative", "r5": "neutral"}
    assert "[PHONE]" in result.clean.set_index("review_id").loc["r4", "text"]
    assert r["pii_masked_rows"] == 1


def test_preprocess_truncates_long_texts():
    df = _frame([{"text": "x" * 5000, "rating": 5.0}])
    result = preprocess(df, PreprocessConfig(max_text_chars=100))
    assert result.report["truncated_long_texts"] == 1
    assert len(result.clean["text"][0]) == 100
