"""Sentiment recipes side by side on development splits of the real Amazon sample.

`benchmarks/quality.py` scores the whole pipeline once on the benchmark split (seed 42). This
script is for choosing the sentiment recipe WITHOUT looking at that split's test rows: it drops
them (the benchmark's test fold, computed the same way), splits what is left again, grouped by
product, trains only the sentiment model and prints dev-test macro-F1 per recipe and split, all
in one run on the same machine. ``--folds K`` (recommended) runs a grouped, stratified K-fold
cross-validation, so every development row is scored exactly once and the summary pools them;
without it, the pipeline's split with other seeds (default 7 and 11: dev test ≈ 20 %, val ≈ 10 %).
(Split seeds of the full file alone would not be independent of the benchmark:
StratifiedGroupKFold's shuffle only breaks ties, so the seed-7 and seed-42 test folds of the full
file share 124 of 197 rows; that is why the benchmark's test rows are dropped first.)

Recipes (each is a list of ``--set`` overrides on params.yaml, cpu profile):

- ``current``: params.yaml as it is (mean pooling, ≤ 300 steps, patience 10 on val macro-F1);
- ``titles``: ``current`` plus each review's title as an extra training row (the default at 07a32d3);
- ``cls-titles``: ``titles`` with the ``[CLS]`` pooler instead of mean pooling;
- ``previous``: the recipe before 07a32d3 (``[CLS]`` pooling, no titles, 100 steps, patience 3;
  length-grouped batches stay on: they are not a setting).

    python benchmarks/sentiment_recipes.py --folds 5             # all recipes, grouped 5-fold CV
    python benchmarks/sentiment_recipes.py --recipes current --split-seeds 7 11 19 --json /tmp/s.json

Without the shared file the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "amazon_fine_food_1k.csv"
COLUMNS = "review_id=Id,product_id=ProductId,text=Text,summary=Summary,rating=Score,timestamp=Time"
RECIPES: dict[str, list[str]] = {
    "current": [],
    "titles": ["sentiment.augment_with_summaries=true"],
    "cls-titles": ["sentiment.pooling=cls", "sentiment.augment_with_summaries=true"],
    "previous": [
        "sentiment.pooling=cls",
        "sentiment.augment_with_summaries=false",
        "train.profiles.cpu.sentiment_max_steps=100",
        "train.profiles.cpu.sentiment_patience=3",
    ],
}


def _log(msg: str) -> None:
    print(f"[sentiment {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _quality():
    """benchmarks/quality.py, whose settings (paths in the work dir, its 80/20 split) this reuses."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import quality

    return quality


def recipe_settings(workdir: Path, recipe: list[str]):
    """params.yaml as quality.py loads it (outputs in ``workdir``, 80/20 split), cpu profile, ``recipe``."""
    return _quality()._settings(ROOT / "params.yaml", workdir, "cpu", recipe)


def clean_rows(data: Path, workdir: Path):
    """The shared file through the project's ingest → validate → preprocess."""
    from reviewops.data.clean import preprocess
    from reviewops.data.ingest import ingest, parse_column_map
    from reviewops.data.validation import validate_batch

    settings = recipe_settings(workdir, [])
    raw = ingest(data, parse_column_map(COLUMNS)).df
    valid = validate_batch(raw, settings, "sentiment_recipes", build_docs=False).valid
    return preprocess(valid, settings.preprocess).clean


def seed_parts(clean, cfg, split_seed: int) -> dict:
    """train/val/test of ``clean`` as the split config ``cfg`` (quality.py's) makes them, with seed ``split_seed``."""
    from reviewops.data.split import split

    return split(clean, cfg.model_copy(update={"seed": split_seed}))


def fold_parts(clean, n_folds: int, cfg, seed: int = 0) -> list[dict]:
    """Grouped, stratified K-fold: every row is a dev-test row exactly once.

    Validation is carved from each fold's training part the way the pipeline carves it (its share
    of the rest: ``cfg.val_size / (1 − cfg.test_size)``, 1/8 for quality.py's split), without the
    product-share cap, so early stopping never sees the fold's test rows.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    from reviewops.data.split import _carve

    df = clean.sort_values("review_id", kind="stable").reset_index(drop=True)
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    out = []
    for rest_idx, test_idx in folds.split(df, df["label_id"], groups=df["product_id"]):
        train, val = _carve(df.iloc[rest_idx].reset_index(drop=True), cfg.val_size / (1 - cfg.test_size), seed + 1)
        out.append({"train": train, "val": val, "test": df.iloc[test_idx]})
    return out


def run_one(parts: dict, recipe: list[str], split_name: str, workdir: Path) -> dict:
    from reviewops.evaluation.metrics import sentiment_metrics
    from reviewops.models.sentiment import SentimentClassifier
    from reviewops.training.sentiment import train_sentiment

    settings = recipe_settings(workdir, recipe)
    t0 = time.perf_counter()
    result = train_sentiment(settings, parts["train"], parts["val"], workdir, resume=False)
    seconds = time.perf_counter() - t0
    clf = SentimentClassifier.load(result.model_dir, settings.sentiment)
    preds = clf.predict(parts["test"]["text"].tolist())
    test = sentiment_metrics(parts["test"]["label"].tolist(), preds)
    return {
        "split": split_name,
        "labels": parts["test"]["label"].tolist(),
        "predictions": list(preds),
        "steps": result.global_step,
        "train_s": round(seconds, 1),
        "n_train": result.n_train,
        "val_macro_f1": result.metrics.get("eval/macro_f1"),
        "test_rows": len(parts["test"]),
        "test_neutral": int((parts["test"]["label"] == "neutral").sum()),
        "test": test,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="The labelled review file.")
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=list(RECIPES),
        choices=list(RECIPES),
        help="Which recipes to train (default: all).",
    )
    parser.add_argument(
        "--split-seeds",
        nargs="+",
        type=int,
        default=[7, 11],
        help="Development split seeds (default 7 11; the quality benchmark uses 42).",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        help="Instead of split seeds: K-fold cross-validation grouped by product, every "
        "development row scored once; the summary pools the K folds' predictions.",
    )
    parser.add_argument(
        "--holdout-seed",
        type=int,
        default=None,
        help="Split seed of the benchmark whose test rows are left out (default: "
        "params.yaml's split.seed, 42, which quality.py uses).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: {args.data} not found (the shared Amazon sample lives in ../shared/data/)")
        return 0

    with tempfile.TemporaryDirectory(prefix="reviewops-sentiment-") as tmp:
        work = Path(tmp)
        clean = clean_rows(args.data, work)
        cfg = recipe_settings(work, []).split
        holdout_seed = cfg.seed if args.holdout_seed is None else args.holdout_seed
        held_out = set(seed_parts(clean, cfg, holdout_seed)["test"]["review_id"])
        clean = clean[~clean["review_id"].isin(held_out)].reset_index(drop=True)
        _log(
            f"{len(held_out)} rows of the benchmark's test split (seed {holdout_seed}) left out; "
            f"{len(clean)} rows for development splits"
        )
        if args.folds:
            splits = {f"fold{i}": parts for i, parts in enumerate(fold_parts(clean, args.folds, cfg))}
        else:
            splits = {f"seed{seed}": seed_parts(clean, cfg, seed) for seed in args.split_seeds}
        results = []
        for name in args.recipes:
            for split_name, parts in splits.items():
                _log(f"recipe {name}, split {split_name}")
                row = run_one(parts, RECIPES[name], split_name, work / f"{name}-{split_name}")
                results.append({"recipe": name, "overrides": RECIPES[name], **row})
                t = row["test"]
                _log(f"  macro-F1 {t['macro_f1']:.3f} ({row['steps']} steps, {row['train_s']} s)")

    from reviewops.evaluation.metrics import sentiment_metrics

    print(
        f"{'recipe':<9} {'split':>6} {'steps':>5} {'train s':>7} {'val F1':>6} {'dev F1':>7} "
        f"{'F1 neg':>6} {'F1 neu':>6} {'F1 pos':>6}  test rows (neutral)"
    )
    for r in results:
        t = r["test"]
        val = f"{r['val_macro_f1']:.3f}" if r["val_macro_f1"] is not None else "-"
        print(
            f"{r['recipe']:<9} {r['split']:>6} {r['steps']:>5} {r['train_s']:>7} {val:>6} "
            f"{t['macro_f1']:>7.3f} {t['f1_negative']:>6.3f} {t['f1_neutral']:>6.3f} {t['f1_positive']:>6.3f}"
            f"  {r['test_rows']} ({r['test_neutral']})"
        )
    for name in args.recipes:
        rows = [r for r in results if r["recipe"] == name]
        scores = [r["test"]["macro_f1"] for r in rows]
        line = f"{name}: mean dev-test macro-F1 {sum(scores) / len(scores):.3f} over {len(scores)} split(s)"
        if args.folds:
            pooled = sentiment_metrics(
                [y for r in rows for y in r["labels"]], [p for r in rows for p in r["predictions"]]
            )
            line += (
                f"; pooled over all {sum(r['test_rows'] for r in rows)} rows: macro-F1 "
                f"{pooled['macro_f1']:.3f} (neg {pooled['f1_negative']:.3f}, neu {pooled['f1_neutral']:.3f}, "
                f"pos {pooled['f1_positive']:.3f}), accuracy {pooled['accuracy']:.3f}"
            )
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
