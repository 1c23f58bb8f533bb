"""Paired bootstrap confidence intervals for the quality figures, from the JSON the benchmarks write.

    python benchmarks/bootstrap_ci.py --quality /tmp/quality.json
    python benchmarks/bootstrap_ci.py --recipes /tmp/sent_cv5.json --baseline titles
    python benchmarks/bootstrap_ci.py --quality /tmp/quality_new.json --versus /tmp/quality_old.json

``--quality`` (from ``benchmarks/quality.py --json``): ROUGE-1/L of the fine-tuned summarizer minus
lead-8 and minus the untuned model, and the sentiment macro-F1, each with a 95% interval over the
test rows. ``--recipes`` (from ``benchmarks/sentiment_recipes.py --folds K --json``): each recipe's
pooled macro-F1 and its difference to ``--baseline`` (paired: every recipe scored the same rows).
``--versus`` (a second ``quality.py`` JSON, same test rows): the ``--quality`` run's fine-tuned
summarizer minus the other run's on ROUGE-1/L, and on the contradiction rate (a summary whose
polarity opposes its review's, as judged by each run's own sentiment model) over the polar reviews
and over the negative ones.

Rows are resampled, not products, so when reviews of one product are alike the intervals are
somewhat too narrow. Fixed seed; ``--resamples`` (default 5000).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _interval(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def paired_bootstrap(n: int, stat, resamples: int, seed: int) -> tuple[float, float]:
    """95% interval of ``stat(idx)`` over ``resamples`` draws of ``n`` row indices with replacement."""
    rng = np.random.default_rng(seed)
    return _interval(np.array([stat(rng.integers(0, n, n)) for _ in range(resamples)]))


def _macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, p, average="macro", zero_division=0))


def quality_intervals(result: dict, resamples: int, seed: int) -> list[tuple[str, float, float, float]]:
    from reviewops.evaluation.metrics import rouge_per_example

    rows = [r for r in result["predictions"] if r.get("prediction") is not None and r.get("reference")]
    refs = [r["reference"] for r in rows]
    per = {
        name: rouge_per_example([r[key] for r in rows], refs)
        for name, key in (("fine-tuned", "prediction"), ("lead-8", "lead"), ("untuned", "untuned"))
    }
    out = []
    for metric in ("rouge1", "rougeL"):
        tuned = np.array([s[metric] for s in per["fine-tuned"]])
        for other in ("lead-8", "untuned"):
            diff = tuned - np.array([s[metric] for s in per[other]])
            low, high = paired_bootstrap(len(diff), lambda i, d=diff: d[i].mean(), resamples, seed)
            out.append((f"{metric} fine-tuned - {other}", float(diff.mean()), low, high))
    labelled = [r for r in result["predictions"] if r.get("pred_label") is not None]
    y = np.array([r["label"] for r in labelled])
    p = np.array([r["pred_label"] for r in labelled])
    low, high = paired_bootstrap(len(y), lambda i: _macro_f1(y[i], p[i]), resamples, seed)
    out.append(("sentiment macro-F1", _macro_f1(y, p), low, high))
    return out


def recipe_intervals(result: dict, baseline: str, resamples: int, seed: int) -> list[tuple[str, float, float, float]]:
    pooled: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in dict.fromkeys(r["recipe"] for r in result["results"]):
        rows = [r for r in result["results"] if r["recipe"] == name]
        pooled[name] = (
            np.array([y for r in rows for y in r["labels"]]),
            np.array([p for r in rows for p in r["predictions"]]),
        )
    if baseline not in pooled:
        raise SystemExit(f"--baseline {baseline!r} is not in the file; recipes there: {sorted(pooled)}")
    y, base = pooled[baseline]
    out = []
    for name, (labels, preds) in pooled.items():
        if not np.array_equal(labels, y):
            raise SystemExit(f"recipe {name!r} was scored on other rows than {baseline!r}: not paired")
        low, high = paired_bootstrap(len(y), lambda i, p=preds: _macro_f1(y[i], p[i]), resamples, seed)
        out.append((f"{name} pooled macro-F1", _macro_f1(y, preds), low, high))
        if name != baseline:
            low, high = paired_bootstrap(
                len(y), lambda i, p=preds: _macro_f1(y[i], p[i]) - _macro_f1(y[i], base[i]), resamples, seed
            )
            out.append((f"{name} - {baseline}", _macro_f1(y, preds) - _macro_f1(y, base), low, high))
    return out


def _by_id(result: dict) -> dict[str, dict]:
    return {str(r["review_id"]): r for r in result["predictions"] if r.get("prediction") is not None}


def quality_versus(result: dict, other: dict, resamples: int, seed: int) -> list[tuple[str, float, float, float]]:
    """This run's fine-tuned summarizer minus ``other``'s, paired on the test rows both summarized."""
    from reviewops.evaluation.metrics import rouge_per_example

    mine, theirs = _by_id(result), _by_id(other)
    ids = sorted(set(mine) & set(theirs))
    if not ids or any(mine[i]["reference"] != theirs[i]["reference"] for i in ids):
        raise SystemExit("--versus: the two runs share no test rows with the same references: not paired")
    refs = [mine[i]["reference"] for i in ids]
    a = rouge_per_example([mine[i]["prediction"] for i in ids], refs)
    b = rouge_per_example([theirs[i]["prediction"] for i in ids], refs)
    out = []
    for metric in ("rouge1", "rougeL"):
        diff = np.array([x[metric] - y[metric] for x, y in zip(a, b, strict=True)])
        low, high = paired_bootstrap(len(diff), lambda i, d=diff: d[i].mean(), resamples, seed)
        out.append((f"{metric} fine-tuned - versus run (n={len(ids)})", float(diff.mean()), low, high))
    for name, keep in (("polar", ("negative", "positive")), ("negative", ("negative",))):
        rows = [i for i in ids if mine[i]["label"] in keep]
        diff = np.array([float(bool(mine[i]["contradiction"])) - float(bool(theirs[i]["contradiction"])) for i in rows])
        if not len(diff):
            continue
        low, high = paired_bootstrap(len(diff), lambda i, d=diff: d[i].mean(), resamples, seed)
        out.append((f"contradiction rate, {name} reviews - versus run (n={len(rows)})", float(diff.mean()), low, high))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", type=Path, help="JSON written by benchmarks/quality.py --json.")
    parser.add_argument("--recipes", type=Path, help="JSON written by benchmarks/sentiment_recipes.py --json.")
    parser.add_argument("--versus", type=Path, help="A second quality.py JSON: --quality's run minus this one.")
    parser.add_argument("--baseline", default="titles", help="Recipe the others are compared to (default titles).")
    parser.add_argument("--resamples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.quality or args.recipes):
        parser.error("give --quality and/or --recipes")
    rows = []
    if args.quality:
        quality = json.loads(args.quality.read_text())
        rows += quality_intervals(quality, args.resamples, args.seed)
        if args.versus:
            rows += quality_versus(quality, json.loads(args.versus.read_text()), args.resamples, args.seed)
    if args.recipes:
        rows += recipe_intervals(json.loads(args.recipes.read_text()), args.baseline, args.resamples, args.seed)
    print(f"| figure ({args.resamples} paired resamples, seed {args.seed}) | value | 95% CI |\n|---|---:|---|")
    for name, value, low, high in rows:
        print(f"| {name} | {value:+.3f} | [{low:+.3f}, {high:+.3f}] |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
