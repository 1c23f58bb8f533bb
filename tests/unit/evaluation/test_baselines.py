"""Baselines: lead-N in English and Chinese."""

from __future__ import annotations

from reviewops.evaluation.baselines import lead_n


def test_lead8_english_and_chinese():
    text = "This kettle boils water fast, the handle stays cool and it is quiet."
    assert lead_n([text]) == ["This kettle boils water fast the handle stays"]
    zh = "这款电饭煲煮出来的米饭很香，操作也很简单。"
    # 8 words * 1.5 chars per Chinese word = 12 characters, punctuation dropped.
    assert lead_n([zh]) == ["这款电饭煲煮出来的米饭很"]
    assert lead_n(["short one"], n=8) == ["short one"]
    assert lead_n(["a b c d"], n=2) == ["a b"]
