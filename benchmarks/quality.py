"""Model quality on the real Amazon Fine Food sample: fine-tuned vs lead-8 vs the untuned base.

One run, in a work directory (default: a temporary one, removed at the end), never touching
the project's data/, reports/ or mlflow.db:

1. ingest ``../shared/data/amazon_fine_food_1k.csv`` (Id/ProductId/Text/Summary/Score/Time),
   validate (Great Expectations, no Data Docs), preprocess, split grouped by product
   (test ≈ 20 %, val ≈ 10 %; actual sizes are printed);
2. train both models with the ``cpu`` profile (``reviewops.training.train.run_train``, MLflow in
   ``sqlite:///<workdir>/mlflow.db``);
3. evaluate on the test split (``reviewops.evaluation.evaluate.evaluate_models``): ROUGE-1/2/L (CJK-aware)
   of the fine-tuned summarizer, the untuned base model and lead-8 on the SAME test rows, and
   sentiment accuracy / macro-F1 / per-class F1 next to a majority-class baseline.

Targets (issue): the fine-tuned summarizer beats both baselines on ROUGE-1 and ROUGE-L, and
sentiment macro-F1 >= 0.60. A missed target prints FAIL; the exit code stays 0 (a benchmark,
not a test). Without the shared file the script says so and exits 0.

    python benchmarks/quality.py --json /tmp/quality.json
    python benchmarks/quality.py --max-test 8 --set train.profiles.cpu.summarizer_max_steps=2 \\
        --set train.profiles.cpu.sentiment_max_steps=2            # a 2-minute smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "amazon_fine_food_1k.csv"
DEFAULT_COLUMNS = "review_id=Id,product_id=ProductId,text=Text,summary=Summary,rating=Score,timestamp=Time"
MAX_TEST_CAP = 250  # default cap on summarized test rows (two generations per row on 2 CPU cores)
MIN_MACRO_F1 = 0.60
SPLIT = ["split.test_size=0.2", "split.val_size=0.1"]


def _log(msg: str) -> None:
    print(f"[quality {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _git_commit() -> str | None:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None


def _settings(params: Path, workdir: Path, profile: str, user_sets: list[str]):
    """params.yaml, with every output path inside ``workdir``, the 80/20 split, then the user's --set."""
    from reviewops.config import load_settings

    paths = {
        "interim_dir": "interim",
        "processed_dir": "processed",
        "quarantine_dir": "quarantine",
        "reports_dir": "reports",
        "gx_dir": "great_expectations",
    }
    overrides = [f"paths.{k}={workdir / v}" for k, v in paths.items()]
    overrides += [*SPLIT, f"train.profile={profile}", *user_sets]
    settings = load_settings(params, overrides)
    models_dir = Path(settings.paths.models_dir)
    if not models_dir.is_absolute():  # params paths are relative to the project root
        settings = settings.model_copy(
            update={"paths": settings.paths.model_copy(update={"models_dir": ROOT / models_dir})}
        )
    return settings


def _with_eval(settings, max_generate: int):
    """Evaluation knobs of this benchmark: the chosen sample, the untuned baseline, no champion."""
    evaluate = settings.evaluate.model_copy(
        update={"max_generate_samples": max_generate, "untuned_baseline": True, "compare_champion": False}
    )
    return settings.model_copy(update={"evaluate": evaluate})


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import pandas as pd

    from reviewops.data.ingest import parse_column_map
    from reviewops.data.stages import run_preprocess, run_split, run_validate
    from reviewops.evaluation.baselines import majority_baseline
    from reviewops.evaluation.evaluate import evaluate_models
    from reviewops.evaluation.metrics import sentiment_metrics
    from reviewops.evaluation.scorecard import metrics_of
    from reviewops.training.train import run_train

    settings = _settings(args.params, workdir, args.profile, args.set)
    prof = settings.train.active
    t_start = time.perf_counter()
    load_start = os.getloadavg()

    # ---- data: the project's stage functions, outputs in the work dir
    _log(f"validating {args.data}")
    # The work dir is the benchmark's own project: its files are the stages' files.
    val = run_validate(
        settings,
        path=args.data,
        columns=parse_column_map(args.columns),
        out=workdir / "interim" / "valid.parquet",
        batch="amazon_quality",
        build_docs=False,
        stage=True,
    )
    pre = run_preprocess(settings, path=Path(val["valid_path"]), stage=True)
    spl = run_split(settings, path=Path(pre["clean_path"]), out_dir=workdir / "processed", stage=True)
    t_data = time.perf_counter() - t_start
    test_df = pd.read_parquet(workdir / "processed" / "test.parquet")
    train_labels = pd.read_parquet(workdir / "processed" / "train.parquet")["label"].tolist()
    has_ref = test_df["summary"].notna() & test_df["summary"].astype(str).str.strip().ne("")
    n_ref = int(has_ref.sum())
    if args.max_test is not None:
        n_gen, why = min(args.max_test, n_ref), f"--max-test {args.max_test}"
    else:
        n_gen, why = min(n_ref, MAX_TEST_CAP), "all test rows with a reference"
        if n_ref > MAX_TEST_CAP:
            why = f"capped at {MAX_TEST_CAP} of {n_ref} (fixed seed {settings.seed}; --max-test to change)"
            _log(f"summarizing {MAX_TEST_CAP} of {n_ref} test rows with a reference: {why}")
    _log(
        f"split: train {spl['train']['rows']} / val {spl['val']['rows']} / test {spl['test']['rows']} rows; "
        f"summarizing {n_gen} ({why})"
    )

    # ---- train: MLflow in the work dir, fresh (no resume), no model logging (the dirs are scored)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"
    _log(
        f"training both models, profile {settings.train.profile} "
        f"(summarizer {prof.summarizer_max_steps} steps, sentiment {prof.sentiment_max_steps} steps)"
    )
    t0 = time.perf_counter()
    trained = run_train(
        settings,
        processed_dir=workdir / "processed",
        out_dir=workdir / "trained",
        resume=False,
        log_models=False,
        report_path=workdir / "reports" / "train.json",
    )
    t_train = time.perf_counter() - t0

    # ---- evaluate: fine-tuned, untuned base and lead-8 on the same sampled rows
    t0 = time.perf_counter()
    phases: list[tuple[str, float]] = [("load models", t0)]

    def log(msg: str) -> None:
        phases.append((msg, time.perf_counter()))
        _log(msg)

    result = evaluate_models(
        _with_eval(settings, max(1, n_gen)),
        test_df,
        trained["model_dirs"]["summarizer"],
        trained["model_dirs"]["sentiment"],
        log=log,
    )
    t_eval = time.perf_counter() - t0
    phases.append(("end", time.perf_counter()))
    eval_phases = {msg: round(phases[i + 1][1] - at, 1) for i, (msg, at) in enumerate(phases[:-1])}

    m = metrics_of(result)
    labels = test_df["label"].tolist()
    majority = majority_baseline(labels, train_labels)
    lead = f"lead{settings.evaluate.lead_n}"
    rouge = {
        "fine_tuned": {k: m.get(f"eval/{k}") for k in ("rouge1", "rouge2", "rougeL")},
        "untuned": {k: m.get(f"baseline/untuned/{k}") for k in ("rouge1", "rouge2", "rougeL")},
        lead: {k: m.get(f"baseline/{lead}/{k}") for k in ("rouge1", "rouge2", "rougeL")},
    }
    sentiment = {
        "fine_tuned": {
            k: m.get(f"eval/sentiment_{k}")
            for k in ("accuracy", "macro_f1", "f1_negative", "f1_neutral", "f1_positive")
        },
        "majority": {**sentiment_metrics(labels, majority), "label": majority[0] if majority else None},
    }
    targets = []
    for metric in ("rouge1", "rougeL"):
        for base in ("untuned", lead):
            ft, bl = rouge["fine_tuned"][metric], rouge[base][metric]
            ok = ft is not None and bl is not None and ft > bl
            targets.append({"target": f"{metric}: fine-tuned > {base}", "value": ft, "threshold": bl, "pass": ok})
    f1 = sentiment["fine_tuned"]["macro_f1"]
    targets.append(
        {
            "target": f"sentiment macro-F1 >= {MIN_MACRO_F1:.2f}",
            "value": f1,
            "threshold": MIN_MACRO_F1,
            "pass": f1 is not None and f1 >= MIN_MACRO_F1,
        }
    )
    n_sum = result["meta"]["summarization_rows"]
    return {
        "command": "python " + shlex.join(sys.argv),
        "git_commit": _git_commit(),
        "data": str(args.data),
        "profile": settings.train.profile,
        "overrides": args.set,
        "models": {"summarizer": settings.summarizer.model, "sentiment": settings.sentiment.model},
        "profile_knobs": prof.model_dump(mode="json"),
        "counts": {
            "ingested": val["ingested"],
            "valid": val["valid"],
            "quarantined": val["quarantined"],
            "failures": val["failures"],
            "duplicates": pre["duplicates"],
            "empty_after_cleaning": pre["rejected_empty_after_cleaning"],
            "clean": pre["clean_rows"],
        },
        "split": {k: spl[k] for k in ("train", "val", "test")},
        "split_config": settings.split.model_dump(mode="json"),
        "summarized_rows": n_sum,
        "eval_batch_size": settings.evaluate.batch_size,
        "summarized_rows_note": why,
        "test_rows_with_reference": n_ref,
        "rouge": rouge,
        "rouge_delta": {
            base: {
                k: (rouge["fine_tuned"][k] - rouge[base][k])
                if None not in (rouge["fine_tuned"][k], rouge[base][k])
                else None
                for k in ("rouge1", "rouge2", "rougeL")
            }
            for base in ("untuned", lead)
        },
        "sentiment": sentiment,
        "sentiment_rows": len(labels),
        "targets": targets,
        "all_pass": all(t["pass"] for t in targets),
        "train": {name: trained.get(name) for name in ("summarizer", "sentiment")},
        "timings_s": {
            "data": round(t_data, 1),
            "train_summarizer": trained["timings"].get("summarizer_train_s"),
            "train_sentiment": trained["timings"].get("sentiment_train_s"),
            "train_total": round(t_train, 1),
            "eval_total": round(t_eval, 1),
            "eval_phases": eval_phases,
            "generate_s_per_row": {
                name: round(sum(v for k, v in eval_phases.items() if k.startswith(prefix)) / n_sum, 2)
                if n_sum
                else None
                for name, prefix in (("fine_tuned", "summarizing"), ("untuned", "untuned baseline"))
            },
            "total": round(time.perf_counter() - t_start, 1),
        },
        # Timings on a shared machine: the 1/5/15-minute load averages say how busy it was.
        "load_avg": {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
        },
        "eval_meta": {k: v for k, v in result["meta"].items() if k != "models"},
        "metrics": m,
        "predictions": result["predictions"],
    }


def _f(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{v:+.4f}" if signed else f"{v:.4f}"


def render(r: dict[str, Any]) -> str:
    c, s, t = r["counts"], r["split"], r["timings_s"]
    lead = next(k for k in r["rouge"] if k.startswith("lead"))
    steps = r["profile_knobs"]
    lines = [
        f"## Quality benchmark: Amazon Fine Food 1k, profile `{r['profile']}`",
        "",
        f"- data: `{r['data']}`: {c['ingested']} ingested, {c['valid']} valid, {c['quarantined']} quarantined, "
        f"{c['duplicates']} duplicates, {c['empty_after_cleaning']} empty after cleaning -> {c['clean']} clean",
        f"- split (grouped by product, stratified; test_size {r['split_config']['test_size']}, val_size "
        f"{r['split_config']['val_size']}): train {s['train']['rows']} / val {s['val']['rows']} / "
        f"test {s['test']['rows']} rows ({s['train']['products']} / {s['val']['products']} / "
        f"{s['test']['products']} products)",
        f"- summarization scored on {r['summarized_rows']} test rows ({r['summarized_rows_note']}), the same rows "
        f"for every system; sentiment on all {r['sentiment_rows']} test rows",
        f"- models: summarizer `{r['models']['summarizer']}` ({steps['summarizer_max_steps']} steps, lr "
        f"{steps['learning_rate_summarizer']}), sentiment `{r['models']['sentiment']}` "
        f"({steps['sentiment_max_steps']} steps, lr {steps['learning_rate_sentiment']})"
        + (f"; overrides: {' '.join(r['overrides'])}" if r["overrides"] else ""),
        "",
        "### Summarization (ROUGE F-measure, 0-1, CJK-aware)",
        "",
        "| system | ROUGE-1 | ROUGE-2 | ROUGE-L |",
        "|---|---:|---:|---:|",
    ]
    names = {"fine_tuned": "fine-tuned", "untuned": "untuned base", lead: lead.replace("lead", "lead-")}
    for key in ("fine_tuned", "untuned", lead):
        v = r["rouge"][key]
        lines.append(f"| {names[key]} | {_f(v['rouge1'])} | {_f(v['rouge2'])} | {_f(v['rougeL'])} |")
    for key in ("untuned", lead):
        d = r["rouge_delta"][key]
        lines.append(
            f"| fine-tuned - {names[key]} | {_f(d['rouge1'], True)} | {_f(d['rouge2'], True)} | "
            f"{_f(d['rougeL'], True)} |"
        )
    maj = r["sentiment"]["majority"]
    lines += [
        "",
        f"### Sentiment ({r['sentiment_rows']} test rows)",
        "",
        "| system | accuracy | macro-F1 | F1 negative | F1 neutral | F1 positive |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, v in (
        ("fine-tuned", r["sentiment"]["fine_tuned"]),
        (f"majority class (`{maj['label']}`, from train)", maj),
    ):
        lines.append(
            f"| {name} | {_f(v['accuracy'])} | {_f(v['macro_f1'])} | {_f(v['f1_negative'])} | "
            f"{_f(v['f1_neutral'])} | {_f(v['f1_positive'])} |"
        )
    lines += ["", "### Targets", "", "| target | value | vs | result |", "|---|---:|---:|---|"]
    for tg in r["targets"]:
        lines.append(
            f"| {tg['target']} | {_f(tg['value'])} | {_f(tg['threshold'])} | {'PASS' if tg['pass'] else '**FAIL**'} |"
        )
    phases = ", ".join(f"{k}: {v}" for k, v in t["eval_phases"].items())
    lines += [
        "",
        "### Timings (seconds)",
        "",
        "| stage | s |",
        "|---|---:|",
        f"| data (validate + preprocess + split) | {t['data']} |",
        f"| train summarizer | {t['train_summarizer']} |",
        f"| train sentiment | {t['train_sentiment']} |",
        f"| train total | {t['train_total']} |",
        f"| eval total (load, generate x2, sentiment, behaviour checks) | {t['eval_total']} |",
        f"| total | {t['total']} |",
        "",
        f"eval phases: {phases}",
        f"load average (1/5/15 min) at start {r['load_avg']['start']}, at end {r['load_avg']['end']} "
        f"on {r['load_avg']['cpus']} CPUs",
        f"generation: fine-tuned {t['generate_s_per_row']['fine_tuned']} s/row, untuned "
        f"{t['generate_s_per_row']['untuned']} s/row (batch {r['eval_batch_size']})",
        "",
        f"command: `{r['command']}` (git {r['git_commit']})",
        "",
        "RESULT: "
        + (
            "PASS (all targets met)"
            if r["all_pass"]
            else "FAIL (" + "; ".join(tg["target"] for tg in r["targets"] if not tg["pass"]) + ")"
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="The labelled review file.")
    parser.add_argument("--columns", default=DEFAULT_COLUMNS, help="Column mapping (canonical=Source,...).")
    parser.add_argument("--profile", default="cpu", help="train.profile (default cpu).")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="params.yaml override, repeatable (e.g. train.profiles.cpu.summarizer_max_steps=80).",
    )
    parser.add_argument(
        "--max-test",
        type=int,
        default=None,
        metavar="N",
        help=f"Summarize at most N test rows (default: all with a reference, max {MAX_TEST_CAP}).",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="Work directory, kept afterwards (default: a temporary one, removed).",
    )
    parser.add_argument(
        "--params", type=Path, default=ROOT / "params.yaml", help="Settings file (default: the project's params.yaml)."
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the full result here.")
    args = parser.parse_args(argv)

    args.data = args.data.resolve()
    if not args.data.is_file():
        print(f"skipped: {args.data} not found (the shared Amazon Fine Food sample); nothing to benchmark")
        return 0
    if args.max_test is not None and args.max_test < 1:
        parser.error("--max-test must be >= 1")
    args.params = args.params.resolve()
    json_out = args.json.resolve() if args.json else None

    from reviewops.config import ConfigError
    from reviewops.errors import ReviewOpsError

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="reviewops-quality-")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    _log(f"work dir {workdir}" + (" (temporary)" if tmp else ""))
    cwd = Path.cwd()
    try:
        # Anything written relative to the working directory lands in the work dir, not the repo.
        os.chdir(workdir)
        result = run(args, workdir)
    except (ReviewOpsError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        os.chdir(cwd)
        if tmp is not None:
            tmp.cleanup()
    result["workdir"] = None if tmp else str(workdir)
    print(render(result))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        print(f"\nwritten {json_out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
