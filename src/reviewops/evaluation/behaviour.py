"""Behaviour checks: invariance to product names and PII masks, negation flips, sane summaries.

Each check runs a prediction callable on fixed English and Chinese cases and reports pass
rates as ``behaviour/<check>`` and ``behaviour/<check>/<language>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reviewops.text import char_length, detect_language

# A model as the checks and the evaluation see it: a batch of texts in, one output per text.
Predict = Callable[[list[str]], list[str]]


@dataclass
class BehaviourResult:
    """Outcome of one behaviour check: how many cases passed, split by language."""

    name: str
    passed: int = 0
    total: int = 0
    by_language: dict[str, list[int]] = field(default_factory=dict)  # lang -> [passed, total]
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else float("nan")

    def add(self, ok: bool, language: str, case: dict[str, Any]) -> None:
        self.total += 1
        self.passed += int(ok)
        counts = self.by_language.setdefault(language, [0, 0])
        counts[0] += int(ok)
        counts[1] += 1
        if not ok:
            self.failures.append(case)

    def metrics(self) -> dict[str, float]:
        """``behaviour/<name>`` plus ``behaviour/<name>/<lang>`` pass rates (0–1)."""
        out = {f"behaviour/{self.name}": self.pass_rate}
        for lang, (ok, n) in sorted(self.by_language.items()):
            out[f"behaviour/{self.name}/{lang}"] = ok / n
        return out


PRODUCT_NAME_CASES: dict[str, tuple[list[str], list[str]]] = {
    "en": (
        [
            "I bought the {p} last week and the battery is great, really happy with it.",
            "The {p} stopped working after two days. Very disappointed, total waste of money.",
            "The {p} is okay. It does the job, nothing special.",
        ],
        ["AcmePhone X2", "Zentro Blender 500", "Lumio desk lamp"],
    ),
    "zh": (
        [
            "上周买的{p}，电池很耐用，非常满意。",
            "{p}用了两天就坏了，太失望了，浪费钱。",
            "{p}还行吧，能用，一般般。",
        ],
        ["小米手环", "华为耳机", "美的电饭煲"],
    ),
}

PII_MASK_CASES: dict[str, tuple[list[str], list[str]]] = {
    "en": (
        [
            "The seller answered me at {m} within an hour. Great service, would buy again.",
            "I contacted support via {m} three times and never got a reply. Awful.",
        ],
        ["[EMAIL]", "[PHONE]", "[URL]"],
    ),
    "zh": (
        [
            "通过{m}联系了客服，一小时内就回复了，服务很好，还会再买。",
            "我通过{m}联系客服三次都没人回复，太差了。",
        ],
        ["[EMAIL]", "[PHONE]", "[URL]"],
    ),
}

# (clearly positive, the same sentence negated and clearly negative)
NEGATION_PAIRS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("The battery is great.", "The battery is not great at all, terrible."),
        ("I love this blender, it works perfectly.", "I do not love this blender, it does not work, awful."),
        (
            "The sound quality is excellent and I am very happy.",
            "The sound quality is not excellent, it is terrible and I am very unhappy.",
        ),
    ],
    "zh": [
        ("电池很好用，非常满意。", "电池一点也不好用，太差了，非常不满意。"),
        ("这个耳机音质很好，我很喜欢。", "这个耳机音质不好，我一点也不喜欢，很失望。"),
        ("质量很好，值得购买。", "质量很差，不值得购买。"),
    ],
}

SUMMARY_CASES: list[str] = [
    "I bought this kettle for my office. It boils water in under two minutes, the handle stays "
    "cool and it is very quiet. The only downside is the short power cord.",
    "The headphones broke after one week of normal use. The left side stopped working and the "
    "seller ignored my emails. I would not recommend them to anyone.",
    "这款电饭煲煮出来的米饭很香，操作也很简单，外观漂亮。唯一的缺点是内胆有点容易刮花，总体来说很满意。",
    "耳机用了一个星期左边就没声音了，联系卖家也不理人，质量太差，不推荐购买。",
]


def _invariance(name: str, predict: Predict, cases: dict[str, tuple[list[str], list[str]]]) -> BehaviourResult:
    result = BehaviourResult(name)
    for lang, (templates, fillers) in cases.items():
        for template in templates:
            # Filler placeholders are {p} or {m}; format with both names so either works.
            texts = [template.format(p=f, m=f) for f in fillers]
            labels = list(predict(texts))
            ok = len(set(labels)) == 1
            result.add(ok, lang, {"texts": texts, "labels": labels})
    return result


def check_invariance_product_names(predict: Predict) -> BehaviourResult:
    """Sentiment must not change when only the product name changes (en + zh templates)."""
    return _invariance("invariance_product_name", predict, PRODUCT_NAME_CASES)


def check_invariance_pii_masks(predict: Predict) -> BehaviourResult:
    """Sentiment must not change when ``[EMAIL]`` becomes ``[PHONE]`` or ``[URL]`` (en + zh)."""
    return _invariance("invariance_pii_mask", predict, PII_MASK_CASES)


def check_directional_negation(predict: Predict) -> BehaviourResult:
    """A clear negation must flip the label: original not negative, negated negative (en + zh)."""
    result = BehaviourResult("directional_negation")
    for lang, pairs in NEGATION_PAIRS.items():
        originals, negated = [p[0] for p in pairs], [p[1] for p in pairs]
        labels = list(predict(originals + negated))
        for i, (orig, neg) in enumerate(pairs):
            lab_o, lab_n = labels[i], labels[len(pairs) + i]
            ok = lab_o != "negative" and lab_n == "negative"
            result.add(ok, lang, {"original": orig, "negated": neg, "labels": [lab_o, lab_n]})
    return result


def check_summaries(summarize: Predict, texts: Sequence[str] | None = None) -> list[BehaviourResult]:
    """Summaries must be non-empty and shorter (in characters) than their input.

    Args:
        summarize: texts -> summaries.
        texts: inputs to check; defaults to :data:`SUMMARY_CASES` (two English, two Chinese).

    Returns:
        ``[summary_nonempty, summary_shorter]`` results, split by detected language.
    """
    texts = list(SUMMARY_CASES if texts is None else texts)
    summaries = list(summarize(texts)) if texts else []
    nonempty, shorter = BehaviourResult("summary_nonempty"), BehaviourResult("summary_shorter")
    for text, summary in zip(texts, summaries, strict=True):
        lang = detect_language(text)
        summary = summary or ""
        case = {"text": text[:200], "summary": summary}
        nonempty.add(bool(summary.strip()), lang, case)
        shorter.add(char_length(summary) < char_length(text), lang, case)
    return [nonempty, shorter]


def behaviour_checks(
    classify: Predict | None, summarize: Predict | None = None, summary_texts: Sequence[str] | None = None
) -> tuple[dict[str, float], dict[str, Any]]:
    """Run every behaviour check that has a predictor.

    Returns:
        ``(metrics, details)``: pass rates under ``behaviour/...`` and, per check, the counts
        and failing cases (for the JSON report).
    """
    results: list[BehaviourResult] = []
    if classify is not None:
        results += [
            check_invariance_product_names(classify),
            check_invariance_pii_masks(classify),
            check_directional_negation(classify),
        ]
    if summarize is not None:
        results += check_summaries(summarize, summary_texts)
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {}
    for r in results:
        metrics.update(r.metrics())
        details[r.name] = {"passed": r.passed, "total": r.total, "failures": r.failures[:10]}
    return metrics, details
