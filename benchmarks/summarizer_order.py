"""Summarizer batch order, A/B on one project's data: length-grouped vs random batches.

Trains the summarizer (``training.summarizer.train_summarizer``, the project's profile and its
target-only loss) once per ``--variant`` on the SAME processed split of ``--project`` (a folder
where ``make run`` has run: ``data/processed``, ``models/``, ``models/trained/sentiment`` as the
faithfulness judge), then scores each on the same test rows with ``evaluate_models`` (no untuned
baseline, no behaviour checks): training seconds, best eval loss, ROUGE-1/L, contradiction rate
(macro), mean title length. One process, one machine, variants in sequence.

    python benchmarks/summarizer_order.py --project . --variant grouped --variant random
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = {"grouped": "group_by_length", "random": "random"}
KEYS = ("eval/rougeL", "eval/rouge1", "eval/contradiction_rate_macro", "eval/summary_chars_mean")


def run_variant(project: Path, variant: str) -> dict:
    """Train one variant in a temporary folder and evaluate it on the project's test split."""
    import pandas as pd

    import reviewops.training.summarizer as summarizer
    from reviewops.config import load_settings
    from reviewops.evaluation.evaluate import evaluate_models

    settings = load_settings(
        project / "params.yaml",
        overrides=[
            f"paths.models_dir={project / 'models'}",
            "evaluate.untuned_baseline=false",
            "evaluate.behaviour_checks=false",
        ],
    )
    processed = project / "data" / "processed"
    train, val, test = (pd.read_parquet(processed / f"{s}.parquet") for s in ("train", "val", "test"))
    original = summarizer.training_args
    summarizer.training_args = lambda *a, **k: original(*a, **{**k, "train_sampling_strategy": STRATEGY[variant]})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = summarizer.train_summarizer(settings, train, val, tmp, resume=False)
            seconds = time.perf_counter() - start
            scores = evaluate_models(settings, test, result.model_dir, project / "models" / "trained" / "sentiment")
    finally:
        summarizer.training_args = original
    return {
        "variant": variant,
        "train_s": round(seconds, 1),
        "steps": result.global_step,
        "eval_loss": round(result.metrics.get("eval/loss", float("nan")), 4),
        **{k: round(scores[k], 4) for k in KEYS if k in scores},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the variants in sequence, one JSON line each; ``--json`` writes them all."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=ROOT, help="A folder where `make run` has run.")
    parser.add_argument("--variant", action="append", choices=sorted(STRATEGY), help="Repeatable (default: both).")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    if not (project / "data" / "processed" / "test.parquet").is_file():
        print(f"{project}: no data/processed/test.parquet; run `make run` there first", file=sys.stderr)
        return 2
    rows = []
    for variant in args.variant or ["grouped", "random"]:
        rows.append(run_variant(project, variant))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
