"""Fakes shared by the evaluation tests: test rows, settings and a keyword sentiment classifier."""

from __future__ import annotations

import pandas as pd

from reviewops.config import EvaluateConfig, ProfileConfig, Settings, TrainConfig

NEG_WORDS = ("not", "terrible", "awful", "disappointed", "waste", "no reply", "不", "差", "坏", "失望", "没人")


def keyword_classifier(texts: list[str]) -> list[str]:
    """A sane rule-based sentiment model: negative words, then "okay"/"一般" for neutral."""
    out = []
    for t in texts:
        low = t.lower()
        if any(w in low for w in NEG_WORDS):
            out.append("negative")
        elif "okay" in low or "一般" in low:
            out.append("neutral")
        else:
            out.append("positive")
    return out


def make_test_df(n: int = 10) -> pd.DataFrame:
    """``n`` processed test rows alternating English and Chinese, every one with a summary and a label."""
    rows = []
    for i in range(n):
        zh = i % 2 == 1
        rows.append(
            {
                "review_id": f"r{i}",
                "product_id": f"p{i % 3}",
                "language": "zh" if zh else "en",
                "category": "toys" if i % 3 else "home",
                "text": (
                    f"第{i}个评论：这个产品质量很好，我很喜欢，推荐购买。"
                    if zh
                    else f"Review {i}: this product works well, good quality and I like it a lot."
                ),
                "summary": "质量很好" if zh else "good quality",
                "label": "positive" if i % 4 else "negative",
            }
        )
    return pd.DataFrame(rows)


def make_settings(max_eval: int | None) -> Settings:
    """Default settings whose ``quick`` profile (and so generation) takes at most ``max_eval`` rows."""
    # max_generate_samples=None couples generation to the profile's max_eval_samples.
    return Settings(
        train=TrainConfig(profile="quick", profiles={"quick": ProfileConfig(max_eval_samples=max_eval)}),
        evaluate=EvaluateConfig(max_generate_samples=None),
    )
