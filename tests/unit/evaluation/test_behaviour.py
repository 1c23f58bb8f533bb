"""Behaviour checks: invariance to product names and PII masks, negation flips, sane summaries."""

from __future__ import annotations

from reviewops.evaluation.behaviour import (
    check_directional_negation,
    check_invariance_pii_masks,
    check_invariance_product_names,
    check_summaries,
)
from tests.unit.evaluation.fakes import keyword_classifier


def test_behaviour_checks_pass_for_a_sane_classifier():
    for check in (check_invariance_product_names, check_invariance_pii_masks, check_directional_negation):
        r = check(keyword_classifier)
        assert r.pass_rate == 1.0, (r.name, r.failures)
        assert set(r.by_language) == {"en", "zh"}
    neg = check_directional_negation(keyword_classifier)
    assert neg.total == 6
    assert neg.metrics() == {
        "behaviour/directional_negation": 1.0,
        "behaviour/directional_negation/en": 1.0,
        "behaviour/directional_negation/zh": 1.0,
    }


def test_behaviour_invariance_catches_name_and_mask_sensitivity():
    def name_biased(texts):
        return ["negative" if "Zentro" in t or "华为" in t else "positive" for t in texts]

    r = check_invariance_product_names(name_biased)
    # 3 en + 3 zh templates; each has one biased filler -> every template fails.
    assert (r.passed, r.total, r.pass_rate) == (0, 6, 0.0)

    def phone_biased(texts):
        return ["negative" if "[PHONE]" in t else keyword_classifier([t])[0] for t in texts]

    r = check_invariance_pii_masks(phone_biased)
    # Positive templates flip on [PHONE] (2 of 4 fail); negative ones stay negative.
    assert (r.passed, r.total) == (2, 4)
    assert r.metrics()["behaviour/invariance_pii_mask/en"] == 0.5


def test_behaviour_negation_fails_for_constant_classifier():
    r = check_directional_negation(lambda texts: ["positive"] * len(texts))
    assert r.pass_rate == 0.0


def test_check_summaries_nonempty_and_shorter():
    nonempty, shorter = check_summaries(lambda ts: [t[:10] for t in ts])
    assert nonempty.pass_rate == 1.0 and shorter.pass_rate == 1.0
    assert set(nonempty.by_language) == {"en", "zh"}

    def bad(ts):  # empty for Chinese, echoes English
        return ["" if "的" in t or "耳机" in t else t for t in ts]

    nonempty, shorter = check_summaries(bad)
    assert nonempty.metrics()["behaviour/summary_nonempty/zh"] == 0.0
    assert nonempty.metrics()["behaviour/summary_nonempty/en"] == 1.0
    assert shorter.metrics()["behaviour/summary_shorter/en"] == 0.0
