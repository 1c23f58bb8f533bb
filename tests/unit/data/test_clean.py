"""Cleaning, PII masking, dedup: nothing lost, counts add up."""

import pandas as pd
import pytest

from reviewops.config import PreprocessConfig
from reviewops.data.clean import clean_text, dedup_key, drop_invisible, mask_pii, preprocess


def _frame(rows):
    base = {
        "product_id": "P1",
        "summary": "ok",
        "timestamp": "2024-01-01T00:00:00Z",
        "language": "en",
        "category": "grocery",
        "source_file": "f.csv",
    }
    return pd.DataFrame([{**base, "review_id": f"r{i}", "source_row": i + 1, **row} for i, row in enumerate(rows)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x00\x00\x00", ""),
        ("\u200b\u200b", ""),
        ("\ufeff\u00ad\u2060\u200e\u200f\u202e\u2066", ""),
        ("\u200d\u200c", ""),  # joiners with nothing to join
        ("\x01\x1b\x7f\x9f \t\r\n", ""),
        ("<b>\u200b</b>&#8203;&#x200D;", ""),  # invisible after markup/entity decoding
        ("a\tb\r\nc\x0bd\x85e", "a b c d e"),  # whitespace controls are spaces
        ("no\x00nul\u200bzwsp soft\u00adhyphen \ufeffbom", "nonulzwsp softhyphen bom"),
        ("family 👨\u200d👩\u200d👧 ok", "family 👨\u200d👩\u200d👧 ok"),  # ZWJ sequence kept
        ("می\u200cخواهم", "می\u200cخواهم"),  # Persian ZWNJ kept
        ("\u200dhi\u200d there\u200c", "hi there"),
    ],
)
def test_clean_text_drops_invisible_characters(text, expected):
    assert clean_text(text) == expected
    assert drop_invisible("plain text") == "plain text"


def test_preprocess_rejects_texts_with_nothing_visible():
    df = _frame(
        [
            {"text": "fine coffee", "rating": 5.0},
            {"text": "\x00\x00", "rating": 1.0},
            {"text": "\u200b\u200d\ufeff", "rating": 3.0},
            {"text": "<p>\u00ad</p>", "rating": 2.0},
        ]
    )
    result = preprocess(df, PreprocessConfig())
    assert result.report["rejected_empty_after_cleaning"] == 3
    assert result.rejected["review_id"].tolist() == ["r1", "r2", "r3"]
    assert set(result.rejected["quarantine_reason"]) == {"text_empty_after_cleaning"}


def test_mask_pii_en_and_zh():
    text = "Mail me at jo.doe@example.com or call (555) 123-4567, see https://shop.example.com/p?1"
    masked = mask_pii(text)
    assert masked == "Mail me at [EMAIL] or call [PHONE], see [URL]"
    assert mask_pii("联系电话13812345678，谢谢") == "联系电话[PHONE]，谢谢"
    # Prices, years and quantities are not phone numbers.
    assert mask_pii("Bought in 2019 for $12.99, pack of 24") == "Bought in 2019 for $12.99, pack of 24"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5558675309", "[PHONE]"),
        ("call 5558675309 anytime", "call [PHONE] anytime"),
        ("call 555 867 5309", "call [PHONE]"),
        ("555.867.5309", "[PHONE]"),
        ("(555) 867-5309", "[PHONE]"),
        ("+1 555-867-5309", "[PHONE]"),
        ("+15558675309", "[PHONE]"),
        ("1-555-867-5309", "[PHONE]"),
        ("15558675309", "[PHONE]"),
        ("+44 20 7946 0958", "[PHONE]"),
        ("13812345678", "[PHONE]"),
        ("电话：13812345678", "电话：[PHONE]"),
        ("电话13812345678，谢谢", "电话[PHONE]，谢谢"),
        ("+86 138 1234 5678", "[PHONE]"),
        ("+8613812345678", "[PHONE]"),
        ("卖家电话5558675309", "卖家电话[PHONE]"),
        ("The order was late, so call 5558675309.", "The order was late, so call [PHONE]."),
        ("order hotline: call 5558675309", "order hotline: call [PHONE]"),  # phone keyword after "order"
        ("订单很快到了，卖家13812345678", "订单很快到了，卖家[PHONE]"),  # "订单" is 8 CJK words back
    ],
)
def test_mask_pii_masks_phone_numbers(text, expected):
    assert mask_pii(text) == expected


# Decisions: a bare 10-digit run is masked only when it is shaped like a North American number
# (area code and exchange start with 2-9), so "1234567890" (a price in yen, a timestamp) stays;
# a run labelled by an order/reference keyword within two words, or next to a currency, stays.
@pytest.mark.parametrize(
    "text",
    [
        "Bought in 2019 for $12.99",
        "$1,299.00",
        "price 1234567890 yen",
        "price 5558675309 yen",
        "paid ¥5558675309",
        "5558675309 yen",
        "order #1234567890",
        "order #5558675309",
        "Order number: 1234567890",
        "Order number: 5558675309",
        "order no. 5558675309",
        "Order 5558675309 arrived",
        "invoice 5558675309",
        "ref: 5558675309",
        "订单号 1234567890",
        "订单号 5558675309",
        "订单号：13812345678",
        "运单 5558675309",
        "ISBN 9780306406157",
        "ISBN 3161484100",
        "tracking 1Z999AA10123456784",
        "tracking number 5558675309",
        "SKU 2041234567",
        "SKU 5558675309",
        "item #5558675309",
        "model 4K55-2020",
        "batch 20230415",
        "delivered 2024-05-01, opened 15/04/2023 at 10:30:15",
        "pack of 24, 1000000 mAh, 12 x 500 ml",
        "serial AB5558675309",
        "55586753091234",
        "3.14159265358979",
        "version 1.2.3, ip 192.168.100.200",
        "from 2019-2021, 3 of 5 stars",
    ],
)
def test_mask_pii_keeps_numbers_that_are_not_phones(text):
    assert mask_pii(text) == text


def test_clean_text_normalizes_whitespace_and_width():
    assert clean_text("  味道　很好！！\n\n Ｇｏｏｄ ") == "味道 很好!! Good"
    assert clean_text(None) == ""


def test_dedup_key_ignores_case_space_punctuation():
    assert dedup_key("Great  coffee!!") == dedup_key("great coffee")
    assert dedup_key("味道很好！") == dedup_key("味道 很好")


def test_preprocess_accounts_for_every_row():
    df = _frame(
        [
            {"text": "Great coffee, fast delivery.", "rating": 5.0},
            {"text": "Great coffee, fast delivery.", "rating": 5.0},  # exact duplicate
            {"text": "great coffee   fast delivery", "rating": 4.0},  # normalized duplicate
            {"text": "<br /><br />", "rating": 3.0},  # empty after cleaning
            {"text": "Terrible taste, call 555-123-4567", "rating": 1.0},
            {"text": "一般般，价格有点贵", "rating": 3.0, "language": "zh"},
        ]
    )
    result = preprocess(df, PreprocessConfig())
    r = result.report
    assert (r["clean_rows"], r["duplicates"], r["rejected_empty_after_cleaning"]) == (3, 2, 1)
    assert r["duplicates_exact"] == 1 and r["duplicates_normalized"] == 1
    assert sorted(result.duplicates["duplicate_of"]) == ["r0", "r0"]
    assert result.rejected["quarantine_reason"].tolist() == ["text_empty_after_cleaning"]
    assert set(result.clean["review_id"]) | set(result.duplicates["review_id"]) | set(
        result.rejected["review_id"]
    ) == set(df["review_id"])
    labels = dict(zip(result.clean["review_id"], result.clean["label"], strict=True))
    assert labels == {"r0": "positive", "r4": "negative", "r5": "neutral"}
    assert "[PHONE]" in result.clean.set_index("review_id").loc["r4", "text"]
    assert r["pii_masked_rows"] == 1


def test_preprocess_truncates_long_texts():
    df = _frame([{"text": "x" * 5000, "rating": 5.0}])
    result = preprocess(df, PreprocessConfig(max_text_chars=100))
    assert result.report["truncated_long_texts"] == 1
    assert len(result.clean["text"][0]) == 100
