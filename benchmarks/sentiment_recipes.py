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

Recipes (each is a list of ``--set`` overrides on params.yaml, cpu profile; ``--set`` adds
overrides to every recipe, e.g. fewer steps for a quick comparison):

- ``current``: params.yaml as it is (mean pooling, 300 steps, final weights: ``sentiment.checkpoint: last``);
- ``best``: ``current`` keeping the checkpoint with the best validation macro-F1 and stopping after
  4 evaluations (of 25 steps) without a gain: the default until the ``last`` run below;
- ``titles``: ``current`` plus each review's title as an extra training row (the default at 07a32d3);
- ``cls-titles``: ``titles`` with the ``[CLS]`` pooler instead of mean pooling;
- ``previous``: the recipe before 07a32d3 (``[CLS]`` pooling, no titles, 100 steps, patience 3;
  length-grouped batches stay on: they are not a setting);
- ``smooth``: ``current`` with label smoothing 0.1;
- ``ordinal``: ``current`` with the ordinal loss (cross-entropy plus the expected ordinal
  distance: negative <-> positive mistakes cost twice a neighbour's);
- ``ordinal-smooth``: both;
- ``thresholds``: ``current`` with per-class logit biases fitted on validation and folded into
  the saved classifier (``sentiment.tune_thresholds``).
- ``head-tail``: ``current`` reading a review longer than ``sentiment.max_length`` by its first
  quarter and last three quarters of the token budget instead of its head (23 % of the sample's
  reviews exceed 128 multilingual-e5 tokens).
- ``last``: no early stopping or checkpoint selection: every fold trains the profile's
  ``sentiment_max_steps`` (300) and keeps the final weights (``sentiment.checkpoint``), so ~64
  validation rows with ~5 neutral ones no longer decide where training stops (the default since
  this recipe's run: pooled 0.657 vs 0.642 for ``best``; ``current`` equals it now).
- ``average``: ``last`` keeping the mean of the trainable weights at every evaluation step of the
  second half of training (steps 150, 175, ..., 300: stochastic weight averaging, Izmailov et al.
  2018; ``training/averaging.py``), meant to smooth the step-to-step swings of the neutral class (5-fold: pooled 0.644,
  neutral 0.348, vs ``last`` 0.657 / 0.376: not adopted).

- ``warm``: ``current`` starting from the sentiment model the default recipe trains on the generated
  default data (``reviewops data generate``: 3,000 rows, seed 42, English and Chinese; what a fresh
  ``make run`` trains) instead of the bare encoder: intermediate-task transfer (Phang et al. 2018),
  so a fold's ~54 neutral reviews refine a head that has already seen 159 generated 3-star ones
  (English and Chinese, pros weighed against cons). Built once per run (~12 min on 2 cores), or kept
  with ``--warm-model DIR`` (5-fold: pooled 0.649, neutral 0.358, +thr 0.654 / 0.392, vs ``last``
  0.657 / 0.376: not adopted).

Every recipe trained without ``tune_thresholds`` is also scored as ``<recipe>+thr``: the same
validation-fitted biases (``training.neutral.fit_class_bias``, what ``tune_thresholds`` does
inside training) applied to its test log-probabilities, at no extra training.

``--train-seeds S1 S2 ...`` trains every recipe once per training seed (``train.seed``: the head's
initialisation, dropout and batch order; the folds stay the same), rows ``<recipe>@seed<S>``, and
prints each recipe's spread over the seeds: how much of a difference between recipes one seed's
luck alone makes (``last`` with seeds 42, 7 and 11: pooled macro-F1 0.665 ± 0.010, neutral F1
0.392 ± 0.022 before evaluations kept the random state, 0.635 ± 0.024 / 0.316 ± 0.062 after; README).
``--runs A B ...`` (repeatable) prints that spread for rows of earlier runs, e.g.
one recipe trained with different seeds in separate ``--json`` runs merged with ``--from-json``.

``--ensemble A B`` (with ``--from-json``, repeatable) adds the row ``A&B``: per split, the mean of the
two recipes' test (and validation) log-probabilities, i.e. two models' geometric-mean vote, scored
like a recipe of its own (and as ``A&B+thr``). ``--tag T`` names a run's rows ``<recipe>@T``, so two
runs of one recipe with different ``--set`` overrides can be merged and compared.

    python benchmarks/sentiment_recipes.py --folds 5             # all recipes, grouped 5-fold CV
    python benchmarks/sentiment_recipes.py --recipes current --split-seeds 7 11 19 --json /tmp/s.json
    python benchmarks/sentiment_recipes.py --folds 5 --recipes current ordinal smooth --json /tmp/n.json
    python benchmarks/sentiment_recipes.py --folds 5 --recipes last --train-seeds 42 7 11 --json /tmp/seeds.json
    python benchmarks/sentiment_recipes.py --folds 5 --recipes last --train-seeds 42 7 11 --read len256 windows128

``--read len256 windows128 ...`` also scores every trained model read another way at inference, as
rows ``<recipe>~<variant>`` with the same weights: ``lenN`` reads up to N tokens of a review (the
model trained on ``sentiment.max_length``), ``windowsN`` averages the class probabilities of a long
review's consecutive N-token pieces. The difference to the plain row is the reading alone: a paired
comparison free of training-seed luck, at the price of a few seconds of inference per split.

Without the shared file the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "amazon_fine_food_1k.csv"
COLUMNS = "review_id=Id,product_id=ProductId,text=Text,summary=Summary,rating=Score,timestamp=Time"
CLEAN_COLUMNS = {"review_id", "product_id", "text", "label", "label_id"}  # what --clean-rows must hold
# best / average choose among the evaluations: they were measured evaluating every 25 steps.
EVERY_25 = "train.profiles.cpu.sentiment_eval_steps=25"
RECIPES: dict[str, list[str]] = {
    "current": [],
    "best": ["sentiment.checkpoint=best", EVERY_25],
    "titles": ["sentiment.augment_with_summaries=true"],
    "cls-titles": ["sentiment.pooling=cls", "sentiment.augment_with_summaries=true"],
    "previous": [
        "sentiment.pooling=cls",
        "sentiment.augment_with_summaries=false",
        "train.profiles.cpu.sentiment_max_steps=100",
        "train.profiles.cpu.sentiment_patience=3",
        "sentiment.checkpoint=best",
        EVERY_25,
    ],
    "smooth": ["sentiment.label_smoothing=0.1"],
    "ordinal": ["sentiment.loss=ordinal"],
    "ordinal-smooth": ["sentiment.loss=ordinal", "sentiment.label_smoothing=0.1"],
    "thresholds": ["sentiment.tune_thresholds=true"],
    "head-tail": ["sentiment.truncation=head_tail"],
    "last": ["sentiment.checkpoint=last"],
    "average": ["sentiment.checkpoint=average", EVERY_25],
    "stars": ["sentiment.star_neutral_mass=0.3"],
    "warm": ["sentiment.model=WARM_START"],
}
WARM = "WARM_START"  # replaced by the warm-start model's folder (warm_start_model)
THR = "+thr"  # suffix of a recipe scored with validation-fitted class biases


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


def warm_start_model(folder: Path, workdir: Path, overrides: list[str]) -> Path:
    """The default recipe (plus ``overrides``) trained on the generated default data, in ``folder`` (reused).

    ``folder`` may also be a saved sentiment model itself (a folder holding ``config.json``): used as is.
    """
    from reviewops.data.clean import preprocess
    from reviewops.data.generate import write_generated
    from reviewops.data.ingest import ingest
    from reviewops.data.validation import validate_batch
    from reviewops.training.sentiment import train_sentiment

    if (folder / "config.json").is_file():
        _log(f"warm start: reusing {folder}")
        return folder
    if (folder / "sentiment" / "config.json").is_file():
        _log(f"warm start: reusing {folder / 'sentiment'}")
        return folder / "sentiment"
    settings = recipe_settings(workdir, overrides)
    gen = settings.generate
    raw = ingest(write_generated(workdir / "generated", gen.rows, gen.seed, gen.scenario, gen.zh_share)).df
    valid = validate_batch(raw, settings, "sentiment_recipes_warm", build_docs=False).valid
    parts = seed_parts(preprocess(valid, settings.preprocess).clean, settings.split, settings.split.seed)
    _log(f"warm start: training on {len(parts['train'])} generated rows into {folder}")
    return Path(train_sentiment(settings, parts["train"], parts["val"], folder, resume=False).model_dir)


def _log_proba(clf, texts: list[str]):
    """Natural-log class probabilities (LABELS order): argmax(log p + bias) == argmax(logits + bias)."""
    import numpy as np

    return np.log(np.clip(clf.predict_proba(texts), 1e-12, None))


def window_log_proba(clf, texts: list[str], window: int):
    """Log of the mean class probabilities over consecutive ``window``-token pieces of each text.

    A review longer than the window is cut (at token boundaries, by the tokenizer's character offsets)
    into pieces of at most ``window - 2`` tokens, each scored on its own like a short review; a
    shorter review is one piece, scored exactly as ``predict_proba`` scores it.
    """
    import numpy as np

    pieces: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        offsets = clf.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        step = window - 2
        starts = [offsets[j][0] for j in range(0, len(offsets), step)] or [0]
        cuts = starts[1:] + [len(text)]
        pieces += [text[a:b] for a, b in zip([0] + starts[1:], cuts, strict=True)]
        owner += [i] * len(starts)
    proba = clf.predict_proba(pieces)
    owner_arr = np.asarray(owner)
    mean = np.stack([proba[owner_arr == i].mean(axis=0) for i in range(len(texts))])
    return np.log(np.clip(mean, 1e-12, None))


def read_variant_rows(clf, parts: dict, model_dir: Path, settings, variants: list[str]) -> list[dict]:
    """The trained model read another way at inference (``--read``): per variant the fields that differ.

    ``lenN``: up to N tokens instead of ``sentiment.max_length`` (the model was trained on the cut
    length; loaded again with that length); ``windowsN``: the mean probabilities of consecutive
    N-token pieces (``window_log_proba``, on ``clf`` as loaded). Same weights as the plain row, so the
    difference to it is the reading alone (paired, no seed luck).
    """
    from reviewops.evaluation.metrics import sentiment_metrics
    from reviewops.models.sentiment import SentimentClassifier
    from reviewops.schema import LABELS

    rows = []
    for variant in variants:
        n = int(re.fullmatch(READ_VARIANT, variant).group(2))
        if variant.startswith("windows"):
            test_logp, val_logp = (window_log_proba(clf, parts[k]["text"].tolist(), n) for k in ("test", "val"))
        else:
            longer = SentimentClassifier.load(model_dir, settings.sentiment.model_copy(update={"max_length": n}))
            test_logp, val_logp = (_log_proba(longer, parts[k]["text"].tolist()) for k in ("test", "val"))
        preds = [LABELS[i] for i in test_logp.argmax(axis=1)]
        rows.append(
            {
                "read": variant,
                "predictions": preds,
                "test_logp": test_logp.round(5).tolist(),
                "val_logp": val_logp.round(5).tolist(),
                "test": sentiment_metrics(parts["test"]["label"].tolist(), preds),
            }
        )
    return rows


READ_VARIANT = r"(len|windows)([0-9]+)"


def run_one(parts: dict, recipe: list[str], split_name: str, workdir: Path, read: list[str] | None = None) -> dict:
    from reviewops.evaluation.metrics import sentiment_metrics
    from reviewops.models.sentiment import SentimentClassifier
    from reviewops.schema import LABELS
    from reviewops.training.sentiment import train_sentiment

    settings = recipe_settings(workdir, recipe)
    t0 = time.perf_counter()
    result = train_sentiment(settings, parts["train"], parts["val"], workdir, resume=False)
    seconds = time.perf_counter() - t0
    clf = SentimentClassifier.load(result.model_dir, settings.sentiment)
    test_logp = _log_proba(clf, parts["test"]["text"].tolist())
    val_logp = _log_proba(clf, parts["val"]["text"].tolist())
    preds = [LABELS[i] for i in test_logp.argmax(axis=1)]
    test = sentiment_metrics(parts["test"]["label"].tolist(), preds)
    return {
        "split": split_name,
        "labels": parts["test"]["label"].tolist(),
        "predictions": preds,
        "test_logp": test_logp.round(5).tolist(),
        "val_labels": parts["val"]["label"].tolist(),
        "val_logp": val_logp.round(5).tolist(),
        "steps": result.global_step,
        "train_s": round(seconds, 1),
        "n_train": result.n_train,
        "val_macro_f1": result.metrics.get("eval/macro_f1"),
        "star_soft_rows": result.metrics.get("train/star_soft_rows", 0),
        "bias": [result.metrics.get(f"train/threshold_bias_{label}") for label in LABELS],
        "test_rows": len(parts["test"]),
        "test_neutral": int((parts["test"]["label"] == "neutral").sum()),
        "test": test,
        "read_rows": read_variant_rows(clf, parts, result.model_dir, settings, read or []),
    }


def with_fitted_bias(row: dict) -> dict:
    """``row`` rescored with class biases fitted on its validation rows (recipe name + ``+thr``)."""
    import numpy as np

    from reviewops.evaluation.metrics import sentiment_metrics
    from reviewops.schema import LABEL2ID, LABELS
    from reviewops.training.neutral import fit_class_bias

    val_y = np.array([LABEL2ID[y] for y in row["val_labels"]])
    bias = fit_class_bias(np.asarray(row["val_logp"]), val_y)
    preds = [LABELS[i] for i in (np.asarray(row["test_logp"]) + bias).argmax(axis=1)]
    return {
        **row,
        "recipe": row["recipe"] + THR,
        "predictions": preds,
        "bias": bias.tolist(),
        "test": sentiment_metrics(row["labels"], preds),
    }


def _spread(values: list[float]) -> str:
    """``mean ± sd [min, max]`` of per-split figures."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    sd = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{v.mean():.3f} ± {sd:.3f} [{v.min():.3f}, {v.max():.3f}]"


def print_table(results: list[dict]) -> None:
    """One line per recipe and split: steps, seconds, val and dev-test F1s, fitted biases."""
    width = max(9, *(len(r["recipe"]) for r in results))
    print(
        f"{'recipe':<{width}} {'split':>6} {'steps':>5} {'train s':>7} {'val F1':>6} {'dev F1':>7} "
        f"{'F1 neg':>6} {'F1 neu':>6} {'F1 pos':>6}  test rows (neutral)  bias neg/neu/pos"
    )
    for r in results:
        t = r["test"]
        val = f"{r['val_macro_f1']:.3f}" if r["val_macro_f1"] is not None else "-"
        bias = "/".join("-" if b is None else f"{b:+.2f}" for b in r.get("bias") or [])
        print(
            f"{r['recipe']:<{width}} {r['split']:>6} {r['steps']:>5} {r['train_s']:>7} {val:>6} "
            f"{t['macro_f1']:>7.3f} {t['f1_negative']:>6.3f} {t['f1_neutral']:>6.3f} {t['f1_positive']:>6.3f}"
            f"  {r['test_rows']} ({r['test_neutral']})  {bias}"
        )


def pooled_metrics(rows: list[dict]) -> dict:
    """Sentiment metrics of all ``rows``' test predictions together (every row once with ``--folds``)."""
    from reviewops.evaluation.metrics import sentiment_metrics

    return sentiment_metrics([y for r in rows for y in r["labels"]], [p for r in rows for p in r["predictions"]])


def print_summary(results: list[dict], pooled: bool) -> None:
    """Per recipe: dev-test macro-F1 and neutral F1 across splits (mean ± sd [min, max]), pooled figures."""
    for name in dict.fromkeys(r["recipe"] for r in results):
        rows = [r for r in results if r["recipe"] == name]
        line = (
            f"{name}: over {len(rows)} split(s) macro-F1 {_spread([r['test']['macro_f1'] for r in rows])}, "
            f"neutral F1 {_spread([r['test']['f1_neutral'] for r in rows])}"
        )
        if pooled:
            m = pooled_metrics(rows)
            line += (
                f"; pooled over all {sum(r['test_rows'] for r in rows)} rows: macro-F1 "
                f"{m['macro_f1']:.3f} (neg {m['f1_negative']:.3f}, neu {m['f1_neutral']:.3f}, "
                f"pos {m['f1_positive']:.3f}), accuracy {m['accuracy']:.3f}"
            )
        print(line)


def _splits(args: argparse.Namespace, work: Path) -> dict:
    """The development splits (folds or seeds) of the file without the benchmark's test rows."""
    if args.clean_rows:
        import pandas as pd

        clean = pd.read_parquet(args.clean_rows)
        missing = sorted(CLEAN_COLUMNS - set(clean.columns))
        if missing:
            raise SystemExit(f"{args.clean_rows} lacks column(s) {', '.join(missing)}: not a file of clean rows")
        _log(f"{len(clean)} clean rows read from {args.clean_rows}")
    else:
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
    unknown = set(args.splits or []) - set(splits)
    if unknown:
        raise SystemExit(f"--splits {sorted(unknown)} not among {sorted(splits)}")
    return {name: parts for name, parts in splits.items() if not args.splits or name in args.splits}


def _write(path: Path | None, results: list[dict]) -> None:
    """Rewrite ``--json`` atomically: a run stopped at a time cap leaves its last whole file."""
    if path is not None:
        part = path.with_name(path.name + ".part")
        part.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "results": results}, indent=2))
        part.replace(path)


def exit_on_sigterm() -> None:
    """SIGTERM (what ``timeout`` sends at the GPU scripts' caps) raises SystemExit, so the work folder's
    TemporaryDirectory, with its checkpoints (≈ 630 MB each), is removed instead of left behind."""
    import signal

    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def run_recipes(args: argparse.Namespace) -> list[dict]:
    """Train every recipe on every split (``--json`` rewritten after each, so a long run keeps its part)."""
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="reviewops-sentiment-") as tmp:
        work = Path(tmp)
        splits = _splits(args, work)
        warm = None
        if any(WARM in o for name in args.recipes for o in RECIPES[name]):
            warm = warm_start_model(args.warm_model or work / "warm-start", work / "warm-work", list(args.set or []))
        for name, seed in [(name, seed) for name in args.recipes for seed in args.train_seeds or [None]]:
            overrides = [o.replace(WARM, str(warm)) for o in RECIPES[name]] + list(args.set or [])
            overrides += [] if seed is None else [f"train.seed={seed}"]
            label = run_name(name, args.tag, seed)
            for split_name, parts in splits.items():
                _log(f"recipe {label}, split {split_name}")
                row = {"recipe": label, "overrides": overrides}
                row.update(run_one(parts, overrides, split_name, work / f"{label}-{split_name}", args.read))
                extra = [
                    {**row, **{k: v for k, v in r.items() if k != "read"}, "recipe": f"{label}~{r['read']}"}
                    for r in row.pop("read_rows", [])
                ]
                results += [row, *extra]
                _write(args.json, results)
                t = row["test"]
                _log(f"  macro-F1 {t['macro_f1']:.3f}, neutral F1 {t['f1_neutral']:.3f} ({row['steps']} steps)")
                for r in extra:
                    t = r["test"]
                    _log(f"  {r['recipe']}: macro-F1 {t['macro_f1']:.3f}, neutral F1 {t['f1_neutral']:.3f}")
    return results


def run_name(recipe: str, tag: str | None, seed: int | None) -> str:
    """A run's row name: ``recipe``, ``recipe@TAG``, ``recipe@seedS`` or ``recipe@TAG@seedS``."""
    return recipe + (f"@{tag}" if tag else "") + ("" if seed is None else f"@seed{seed}")


def run_spread(results: list[dict], names: list[str]) -> str:
    """Pooled macro-F1 and neutral F1 of each named run, and their ``mean ± sd [min, max]`` across the runs."""
    known = {r["recipe"] for r in results}
    missing = [n for n in names if n not in known]
    if missing:
        raise SystemExit(f"--runs: not found: {missing} (recipes: {sorted(known)})")
    if len(set(names)) < 2:
        raise SystemExit(f"--runs needs two or more different runs, got {names}")
    runs = {name: [r for r in results if r["recipe"] == name] for name in names}
    if any(not r["split"].startswith("fold") for rows in runs.values() for r in rows):
        raise SystemExit("--runs compares figures pooled over folds: give runs made with --folds")
    if len({len(rows) for rows in runs.values()}) != 1:
        raise SystemExit(f"--runs {' '.join(names)}: the runs cover different numbers of splits")
    pooled = {name: pooled_metrics(rows) for name, rows in runs.items()}
    each = ", ".join(f"{name} {m['macro_f1']:.3f}/{m['f1_neutral']:.3f}" for name, m in pooled.items())
    return (
        f"{len(pooled)} runs ({each}; pooled macro-F1/neutral F1): macro-F1 "
        f"{_spread([m['macro_f1'] for m in pooled.values()])}, "
        f"neutral F1 {_spread([m['f1_neutral'] for m in pooled.values()])}"
    )


def ensemble_rows(results: list[dict], first: str, second: str) -> list[dict]:
    """Rows ``first&second``: per split both recipes' mean log-probabilities (same rows, same order)."""
    import numpy as np

    from reviewops.evaluation.metrics import sentiment_metrics
    from reviewops.schema import LABELS

    by = {(r["recipe"], r["split"]): r for r in results}
    splits = [r["split"] for r in results if r["recipe"] == first and (second, r["split"]) in by]
    if not splits:
        raise SystemExit(
            f"--ensemble {first} {second}: no split holds both (recipes: {sorted({r['recipe'] for r in results})})"
        )
    rows = []
    for split in splits:
        a, b = by[(first, split)], by[(second, split)]
        if a["labels"] != b["labels"] or a["val_labels"] != b["val_labels"]:
            raise SystemExit(f"--ensemble {first} {second}: split {split} scored different rows in the two runs")
        test_logp = (np.asarray(a["test_logp"]) + np.asarray(b["test_logp"])) / 2
        val_logp = (np.asarray(a["val_logp"]) + np.asarray(b["val_logp"])) / 2
        preds = [LABELS[i] for i in test_logp.argmax(axis=1)]
        rows.append(
            {
                **a,
                "recipe": f"{first}&{second}",
                "overrides": a["overrides"] + b["overrides"],
                "predictions": preds,
                "test_logp": test_logp.round(5).tolist(),
                "val_logp": val_logp.round(5).tolist(),
                "train_s": round(a["train_s"] + b["train_s"], 1),
                "val_macro_f1": None,
                "bias": [None] * len(LABELS),
                "test": sentiment_metrics(a["labels"], preds),
            }
        )
    return rows


def with_thresholds(results: list[dict]) -> list[dict]:
    """``results`` plus the ``+thr`` rescoring of each trained row that did not tune thresholds itself."""
    trained = [r for r in results if not r["recipe"].endswith(THR)]
    untuned = [r for r in trained if not any("tune_thresholds=true" in o for o in r["overrides"])]
    return trained + [with_fitted_bias(r) for r in untuned]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="The labelled review file.")
    parser.add_argument(
        "--clean-rows",
        type=Path,
        help="Read the clean rows from this parquet file (benchmarks/gpu_bundle.py --pack writes one) instead of "
        "running --data through ingest, validation and preprocessing (for a machine without Great Expectations).",
    )
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
    parser.add_argument(
        "--splits",
        nargs="+",
        default=None,
        metavar="NAME",
        help="Train only these splits (e.g. fold1 fold2: the rest of an interrupted run; merge with --from-json).",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="An override added to every recipe (repeatable), e.g. train.profiles.cpu.sentiment_max_steps=150.",
    )
    parser.add_argument(
        "--warm-model",
        type=Path,
        default=None,
        metavar="DIR",
        help="Where the warm recipe's start model is kept: trained there once if missing (default: a temp folder); "
        "a saved sentiment model's own folder is used as is.",
    )
    parser.add_argument(
        "--tag", default=None, help="Name this run's rows <recipe>@TAG (e.g. the --set it adds), to merge runs."
    )
    parser.add_argument(
        "--train-seeds",
        nargs="+",
        type=int,
        default=None,
        metavar="S",
        help="Train every recipe once per training seed (train.seed; rows <recipe>@seed<S>) and print "
        "each recipe's spread over the seeds.",
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        action="append",
        metavar="RECIPE",
        help="Print the spread (mean ± sd) of these runs' pooled figures, e.g. one recipe's runs with "
        "different seeds. Repeatable.",
    )
    parser.add_argument(
        "--read",
        nargs="+",
        default=None,
        metavar="VARIANT",
        help="Also score each trained model read another way (rows <recipe>~VARIANT, same weights): lenN reads "
        "up to N tokens (e.g. len256), windowsN averages the probabilities of consecutive N-token pieces.",
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        default=None,
        help="Train nothing: summarize the results of earlier --json runs (e.g. one per recipe, same folds).",
    )
    parser.add_argument(
        "--ensemble",
        nargs=2,
        action="append",
        metavar=("A", "B"),
        help="With --from-json: also score recipes A and B together (mean log-probabilities per split), "
        "as the row A&B. Repeatable.",
    )
    args = parser.parse_args(argv)
    if args.train_seeds and (args.from_json or not args.folds or len(set(args.train_seeds)) != len(args.train_seeds)):
        raise SystemExit(
            "--train-seeds trains (not with --from-json: use --runs), with --folds (pooled figures), each seed once"
        )
    bad_read = [v for v in args.read or [] if not re.fullmatch(READ_VARIANT, v)]
    if bad_read:
        raise SystemExit(f"--read {' '.join(bad_read)}: expected lenN or windowsN, e.g. len256 windows128")
    if args.from_json:
        results = [r for path in args.from_json for r in json.loads(path.read_text())["results"]]
        results = [r for r in results if not r["recipe"].endswith(THR)]
        for first, second in args.ensemble or []:
            results += ensemble_rows(results, first, second)
    elif args.ensemble:
        raise SystemExit("--ensemble works on finished runs: give their --json files with --from-json")
    elif not args.clean_rows and not args.data.is_file():
        print(f"skipped: {args.data} not found (the shared Amazon sample lives in ../shared/data/)")
        return 0
    else:
        exit_on_sigterm()
        results = run_recipes(args)
    results = with_thresholds(results)
    print_table(results)
    print_summary(results, pooled=bool(args.folds) or all(r["split"].startswith("fold") for r in results))
    groups = list(args.runs or [])
    if len(args.train_seeds or []) > 1:
        groups += [[run_name(n, args.tag, seed) for seed in args.train_seeds] for n in args.recipes]
    for names in groups:
        print(run_spread(results, names))
    _write(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
