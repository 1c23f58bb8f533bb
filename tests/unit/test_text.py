"""CJK-aware text helpers."""

from reviewops.text import char_length, cjk_share, detect_language, normalize, tokenize, word_count


def test_tokenize_splits_cjk_chars_and_keeps_latin_words():
    assert tokenize("Great taste! 味道很好") == ["great", "taste", "味", "道", "很", "好"]
    assert tokenize("It's OK") == ["it's", "ok"]


def test_lengths_count_code_points_not_bytes():
    text = "这个产品质量很好"
    assert len(text.encode("utf-8")) == 24
    assert char_length(text) == 8
    assert word_count(text) == 8
    assert word_count("good value for money") == 4


def test_fullwidth_forms_are_folded():
    assert normalize("ＡＢＣ１２３！") == "ABC123!"


def test_detect_language():
    assert detect_language("这个产品很好，物流也快") == "zh"
    assert detect_language("Tastes great, fast delivery") == "en"
    assert cjk_share("") == 0.0
