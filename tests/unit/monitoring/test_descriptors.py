"""Text descriptors: English and Chinese counted like reviewops.text, leave-one-out OOV of the reference."""

from __future__ import annotations

import pandas as pd
import pytest

from reviewops.monitoring.descriptors import build_vocab, compute_descriptors, reference_descriptors
from reviewops.text import char_length, detect_language, non_ascii_share, word_count

ZH_10 = "这个咖啡味道真的很好"  # ten ideographs


def test_descriptors_count_english_and_chinese_correctly():
    df = pd.DataFrame({"text": ["Great taste, would buy again [EMAIL]", ZH_10, None]}, index=[7, 8, 9])
    vocab = {"great", "would", "buy", "again", "email", "这", "个", "咖", "啡", "味", "道"}
    d = compute_descriptors(df, vocab)
    assert list(d.index) == [7, 8, 9]
    en, zh, empty = d.loc[7], d.loc[8], d.loc[9]
    assert en.char_length == 36 and en.word_count == 6
    assert en.pii_mask_rate == pytest.approx(1 / 6)
    assert en.oov_rate == pytest.approx(1 / 6)  # "taste"
    assert en.non_ascii_share == 0 and en.detected_language == "en"
    assert zh.char_length == 10 and zh.word_count == 10
    assert zh.non_ascii_share == 1.0 and zh.detected_language == "zh"
    assert zh.oov_rate == pytest.approx(4 / 10)  # 真 的 很 好
    assert empty.char_length == 0 and empty.word_count == 0 and empty.oov_rate == 0


def test_descriptors_match_text_helpers_on_tricky_strings():
    texts = [
        "Ｇｒｅａｔ！ 很好",
        "Cafe\u0301 au lait",
        "混合 mixed 文本 text.",
        "  ",
        "don't STOP",
        "한국어 리뷰",
        "價格\u3000合理",
    ]
    d = compute_descriptors(pd.DataFrame({"text": texts}), vocab=None)
    assert d["char_length"].tolist() == [char_length(t) for t in texts]
    assert d["word_count"].tolist() == [word_count(t) for t in texts]
    assert d["non_ascii_share"].tolist() == pytest.approx([non_ascii_share(t) for t in texts])
    assert d["detected_language"].tolist() == [detect_language(t) for t in texts]
    assert d["oov_rate"].isna().all()  # no vocabulary given


def test_reference_oov_is_leave_one_out_and_vocab():
    texts = ["apple banana cherry", "apple banana", "apple banana zebra", "kiwi fig", "kiwi fig"]
    desc, vocab = reference_descriptors(pd.DataFrame({"text": texts}))
    assert desc["oov_rate"].tolist() == pytest.approx([1 / 3, 0, 1 / 3, 0, 0])  # duplicates see each other
    assert vocab == build_vocab(texts) == {"apple", "banana", "cherry", "zebra", "kiwi", "fig"}
