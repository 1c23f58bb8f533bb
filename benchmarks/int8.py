"""int8 vs fp32 CPU inference, torch and ONNX Runtime: sentiment reviews/s and macro-F1 on the same rows.

1. The real Amazon Fine Food sample through the project's ingest → validate → preprocess, split
   grouped by product (``--test-size``, default 0.45: a large test split; still, with ~30
   neutral test rows, one flipped neutral prediction moves macro-F1 by about 0.01);
2. the configured sentiment encoder (``sentiment.model``, e5 by default) fine-tuned on the train
   part with the project's own training (``train_sentiment``, ``cpu`` profile), or the one
   ``--model DIR`` holds from an earlier run of this script (the test rows it was split with are
   recorded beside it and checked);
3. four runtimes of the same classifier: torch as loaded (``fp32``, the project's default), its
   int8 copy (``int8``: ``SentimentClassifier.quantized``, torch dynamic quantization of the
   Linear layers), and ONNX Runtime (``sentiment.runtime: onnx``, models/onnx_sentiment.py) in
   fp32 (``onnx_fp32``) and dynamic int8 (``onnx_int8``; both int8 runtimes keep the FFN outputs of
   ``sentiment.int8_fp32_layers`` fp32, or run once per set given to ``--int8-fp32-layers``, named
   ``int8@4+5``, ``onnx_int8@none``, ...), and each int8 one as the service runs it with
   ``sentiment.int8_recheck_margin`` (``--int8-recheck-margin``; rows whose int8 top-two margin is
   below it scored again in fp32 on the same runtime, named ``...+recheck``, with the share of rows
   rechecked): macro-F1, accuracy, argmax agreement
   with torch fp32 and the largest probability difference on ALL test rows, then reviews/s on
   the first ``--speed-rows`` test texts at 1 thread and at torch's default thread count (the
   ONNX Runtime sessions get the same count), batches of ``--batch-size`` (the scoring engine's
   CPU forward batch); the runtimes alternate pass by pass ``--repeats`` times, each round
   starting one runtime later, and the fastest pass of each counts (the machine may be shared);
4. the summarizer (``summarizer.model``, untuned; ``--skip-summarizer`` to leave out): int8 vs
   fp32 generation reviews/s on ``--summary-rows`` test reviews, how many titles change and
   ROUGE-L of both against the reviewers' titles, to decide whether int8 pays there too.

Targets (issue #14), judged for each int8 runtime (torch ``int8``, ``onnx_int8``) against torch
fp32, the project's current default: ≥ 2x its reviews/s (1 thread) and |Δ macro-F1| ≤ 0.005.
``onnx_int8`` over ``onnx_fp32`` is printed too, not judged. A missed target prints FAIL; the
exit code stays 0 (a benchmark, not a test). Without the shared file the script says so and
exits 0.

    python benchmarks/int8.py --model /tmp/int8-minilm --json /tmp/int8.json   # trains once, keeps it
    python benchmarks/int8.py --model /tmp/int8-minilm --skip-summarizer --repeats 5
    python benchmarks/int8.py --model /tmp/int8-e5 --skip-summarizer --int8-fp32-layers 4,5 none --repeats 6
    python benchmarks/int8.py --model /tmp/int8-e5 --skip-summarizer --int8-recheck-margin 0   # int8 alone
    python benchmarks/int8.py --set train.profile=quick --speed-rows 32 --repeats 1 --summary-rows 4  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "amazon_fine_food_1k.csv"
SPLIT_FILE = "int8_split.json"  # beside a kept model: which rows it must be tested on
TARGET_SPEEDUP = 2.0
TARGET_F1_DELTA = 0.005


def _log(msg: str) -> None:
    print(f"[int8 {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _recipes():
    """benchmarks/sentiment_recipes.py: its data preparation and quality.py's settings."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import sentiment_recipes

    return sentiment_recipes


def split_rows(data: Path, workdir: Path, args: argparse.Namespace) -> tuple[Any, dict]:
    """Settings (quality.py's, cpu profile, then ``--set``) and train/val/test of the cleaned file, by product."""
    from reviewops.data.split import split

    recipes = _recipes()
    overrides = [f"split.test_size={args.test_size}", f"split.seed={args.split_seed}", *args.set]
    settings = recipes.recipe_settings(workdir, overrides)
    return settings, split(recipes.clean_rows(data, workdir), settings.split)


def fine_tuned(settings: Any, parts: dict, model: Path | None, workdir: Path, data: Path) -> Path:
    """``model`` when it was trained by this script on the same test rows; else a fresh fine-tune (kept there)."""
    from reviewops.training.sentiment import train_sentiment

    test_ids = sorted(str(r) for r in parts["test"]["review_id"])
    record = {"data": str(data), "test_review_ids": test_ids}
    if model is not None and (model / SPLIT_FILE).is_file():
        if json.loads((model / SPLIT_FILE).read_text(encoding="utf-8")) != record:
            raise SystemExit(f"{model} was fine-tuned on another split; pass another --model directory")
        _log(f"using the fine-tuned model in {model}")
        return model
    _log(f"fine-tuning {settings.sentiment.model} on {len(parts['train'])} rows (cpu profile)")
    result = train_sentiment(settings, parts["train"], parts["val"], workdir / "train", resume=False)
    val_f1 = result.metrics.get("eval/macro_f1")
    _log(f"trained {result.global_step} steps in {result.seconds:.0f} s, val macro-F1 {val_f1}")
    target = model or workdir / "sentiment"
    if model is not None:
        shutil.copytree(result.model_dir, target, dirs_exist_ok=True)
    else:
        target = Path(result.model_dir)
    (target / SPLIT_FILE).write_text(json.dumps(record), encoding="utf-8")
    return target


def timed_rates(runs: dict[str, Any], threads: int, repeats: int) -> dict[str, dict[str, float]]:
    """Reviews/s of each ``name -> (call, rows)`` at ``threads`` torch threads; passes alternate.

    Each round starts one runtime later (a rotation): a slot in the round that runs faster or
    slower (stop 28 saw the first int8 runtime after the fp32 ones at 2.1x and the same model in
    a later slot at 1.6-1.8x) is shared out instead of always landing on the same runtime.

    Wall-clock rates (fastest pass and median) and reviews per CPU-second of this process (fastest
    pass): on a shared machine a one-thread pass waits for a core, and the CPU-time rate is what
    the same pass gives on an idle core. With more threads the CPU-time rate sums the threads.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    try:
        names = list(runs)
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # each pass starts one runtime later
                call = runs[name][0]
                start, start_cpu = time.perf_counter(), time.process_time()
                call()
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    finally:
        torch.set_num_threads(before)
    out = {}
    for name, (_call, rows) in runs.items():
        w = sorted(wall[name])
        out[name] = {
            "best_per_s": round(rows / w[0], 2),
            "median_per_s": round(rows / w[len(w) // 2], 2),
            "per_cpu_s": round(rows / max(min(cpu[name]), 1e-9), 2),
        }
    return out


RUNTIMES = ("fp32", "int8", "onnx_fp32", "onnx_int8")  # torch fp32 (the default) first: the reference
RECHECK = "+recheck"  # suffix of an int8 runtime whose close calls are scored again in fp32


def _speedups(rates: dict[str, dict[str, float]], base: str = "fp32", runtimes: tuple[str, ...] = RUNTIMES) -> dict:
    """Each runtime over ``base``: wall (fastest passes) and CPU-time rates."""
    return {
        name: {
            "speedup": round(rates[name]["best_per_s"] / rates[base]["best_per_s"], 2),
            "speedup_cpu_time": round(rates[name]["per_cpu_s"] / rates[base]["per_cpu_s"], 2),
        }
        for name in runtimes
        if name != base
    }


def classifiers(
    model_dir: Path,
    settings: Any,
    threads: int,
    cache_dir: Path,
    specs: list[list[int]] | None = None,
    recheck_margin: float = 0.0,
) -> dict[str, Any]:
    """The runtimes of the classifier in ``model_dir``; ONNX Runtime sessions on ``threads`` threads.

    torch fp32, ONNX fp32, and torch int8 / ONNX int8 with ``sentiment.int8_fp32_layers`` from the
    settings, or (``specs``) once per list of fp32 layers, named ``int8@4+5`` / ``onnx_int8@4+5``;
    with ``recheck_margin`` > 0 each int8 one also wrapped as the service runs it
    (``RecheckedClassifier``: close calls again in fp32 on the same runtime), named ``...+recheck``.
    """
    from reviewops.models.onnx_sentiment import OnnxSentimentClassifier
    from reviewops.models.recheck import RecheckedClassifier
    from reviewops.models.sentiment import SentimentClassifier

    fp32 = SentimentClassifier.load(model_dir, settings.sentiment)
    out = {
        "fp32": fp32,
        "onnx_fp32": OnnxSentimentClassifier.from_classifier(fp32, cache_dir=cache_dir, threads=threads),
    }
    for layers in specs or [None]:
        tag = "" if layers is None else "@" + ("+".join(map(str, layers)) or "none")
        cfg = fp32.cfg if layers is None else fp32.cfg.model_copy(update={"int8_fp32_layers": layers})
        variant = SentimentClassifier(fp32.model, fp32.tokenizer, cfg)
        out[f"int8{tag}"] = variant.quantized()
        out[f"onnx_int8{tag}"] = OnnxSentimentClassifier.from_classifier(
            variant, cache_dir=cache_dir, inference="int8", threads=threads
        )
        if recheck_margin > 0:
            out[f"int8{tag}{RECHECK}"] = RecheckedClassifier(out[f"int8{tag}"], fp32, recheck_margin)
            onnx_int8 = out[f"onnx_int8{tag}"]
            out[f"onnx_int8{tag}{RECHECK}"] = RecheckedClassifier(onnx_int8, out["onnx_fp32"], recheck_margin)
    return out


def _agreement(a: list[str], b: list[str]) -> float:
    return round(sum(x == y for x, y in zip(a, b, strict=True)) / max(len(a), 1), 4)


def sentiment_part(model_dir: Path, settings: Any, test: Any, args: argparse.Namespace, cache_dir: Path) -> dict:
    """F1 of the four runtimes on all test rows (against torch fp32); their reviews/s at 1 and default threads."""
    import numpy as np
    import torch

    from reviewops.evaluation.metrics import sentiment_metrics
    from reviewops.schema import LABELS

    default_threads = torch.get_num_threads()
    margin = _recheck_margin(args, settings)
    models = classifiers(model_dir, settings, default_threads, cache_dir, args.int8_fp32_layers, margin)
    texts, labels = test["text"].tolist(), test["label"].tolist()
    proba = {name: clf.predict_proba(texts, batch_size=args.batch_size) for name, clf in models.items()}
    rechecked = {
        name: round(len(clf.rechecked_rows(proba[name.removesuffix(RECHECK)])) / max(len(texts), 1), 4)
        for name, clf in models.items()
        if name.endswith(RECHECK)
    }
    preds = {name: [LABELS[i] for i in p.argmax(axis=1)] for name, p in proba.items()}
    quality = {name: sentiment_metrics(labels, preds[name]) for name in proba}
    against = {"fp32": [n for n in models if n != "fp32"], "onnx_fp32": [n for n in models if "onnx_int8" in n]}
    compared = {
        f"{name}_vs_{base}": {
            "macro_f1_delta": round(quality[name]["macro_f1"] - quality[base]["macro_f1"], 4),
            "agreement": _agreement(preds[base], preds[name]),
            "max_probability_difference": round(float(np.abs(proba[base] - proba[name]).max()), 4),
        }
        for base, names in against.items()
        for name in names
    }
    speed_texts = texts[: args.speed_rows]
    speed = {}
    for threads in sorted({1, default_threads}):
        if threads != default_threads:
            models = classifiers(model_dir, settings, threads, cache_dir, args.int8_fp32_layers, margin)  # cached
        runs = {
            name: ((lambda c=clf: c.predict_proba(speed_texts, batch_size=args.batch_size)), len(speed_texts))
            for name, clf in models.items()
        }
        _log(f"sentiment speed at {threads} thread(s), {len(speed_texts)} rows x {args.repeats} passes each")
        rates = timed_rates(runs, threads, args.repeats)
        speed[str(threads)] = {
            "rates": rates,
            "vs_fp32": _speedups(rates, "fp32", tuple(rates)),
            "vs_onnx_fp32": _speedups(rates, "onnx_fp32", tuple(n for n in rates if n.startswith("onnx_"))),
        }
    return {
        "model_dir": str(model_dir),
        "test_rows": len(texts),
        "speed_rows": len(speed_texts),
        "quality": quality,
        "compared": compared,
        "recheck_margin": margin,
        "rechecked_share": rechecked,
        "speed": speed,
    }


def _recheck_margin(args: argparse.Namespace, settings: Any) -> float:
    """``--int8-recheck-margin``, else ``sentiment.int8_recheck_margin`` of the settings."""
    return settings.sentiment.int8_recheck_margin if args.int8_recheck_margin is None else args.int8_recheck_margin


def ffn_outliers(model_dir: Path, settings: Any, texts: list[str], batch_size: int) -> list[dict[str, Any]]:
    """Each encoder layer's FFN output Linear: largest |input| over its root-mean-square on ``texts``, largest first.

    A dynamic int8 Linear quantizes its input with one scale per call, so an input whose few
    outlier channels are hundreds of times its typical size loses the rest to rounding: these are
    the layers ``sentiment.int8_fp32_layers`` keeps fp32. Labels are not read.
    """
    import torch

    from reviewops.models.int8 import ffn_output_linears
    from reviewops.models.sentiment import SentimentClassifier

    clf = SentimentClassifier.load(model_dir, settings.sentiment)
    names = ffn_output_linears(clf.model, list(range(clf.model.config.num_hidden_layers)))
    seen: dict[str, list[float]] = {n: [0.0, 0.0, 0.0] for n in names}  # max |x|, sum of mean x^2, calls

    def record(name: str) -> Any:
        def hook(_module: Any, inputs: tuple[Any, ...], _output: Any) -> None:
            x = inputs[0].detach().float()
            s = seen[name]
            s[0], s[1], s[2] = max(s[0], float(x.abs().max())), s[1] + float(x.pow(2).mean()), s[2] + 1

        return hook

    modules = dict(clf.model.named_modules())
    handles = [modules[n].register_forward_hook(record(n)) for n in names]
    try:
        with torch.no_grad():
            clf.predict_proba(texts, batch_size=batch_size)
    finally:
        for h in handles:
            h.remove()
    rows = [
        {"layer": n, "max_abs": round(s[0], 2), "max_over_rms": round(s[0] / max((s[1] / s[2]) ** 0.5, 1e-12), 1)}
        for n, s in seen.items()
        if s[2]
    ]
    return sorted(rows, key=lambda r: -r["max_over_rms"])


def quantizable_linears(model: Any, keep: tuple[str, ...] = ("classifier",)) -> list[str]:
    """Names of the ``nn.Linear`` layers :func:`quantize_int8` turns int8 (those outside ``keep``)."""
    import torch

    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not any(name == k or name.startswith(k + ".") for k in keep)
    ]


def _mean_kl(ref: Any, other: Any) -> float:
    import numpy as np

    p, q = np.clip(ref, 1e-12, None), np.clip(other, 1e-12, None)
    return float((p * (np.log(p) - np.log(q))).sum(axis=1).mean())


def layer_sensitivity(fp32: Any, texts: list[str], batch_size: int) -> list[dict[str, Any]]:
    """Each quantizable Linear alone in int8: mean KL(fp32 || that) on ``texts``, most sensitive first."""
    from reviewops.models.int8 import quantize_int8
    from reviewops.models.sentiment import SentimentClassifier

    ref = fp32.predict_proba(texts, batch_size=batch_size)
    names = quantizable_linears(fp32.model)
    out = []
    for i, name in enumerate(names):
        others = tuple(n for n in names if n != name)
        one = SentimentClassifier(quantize_int8(fp32.model, keep=("classifier", *others)), fp32.tokenizer, fp32.cfg)
        out.append({"layer": name, "kl": _mean_kl(ref, one.predict_proba(texts, batch_size=batch_size))})
        if (i + 1) % 12 == 0:
            _log(f"sensitivity: {i + 1}/{len(names)} layers")
    return sorted(out, key=lambda r: -r["kl"])


def mixed_part(model_dir: Path, settings: Any, parts: dict, args: argparse.Namespace) -> dict:
    """torch int8 keeping the K most int8-sensitive Linear layers in fp32, K chosen without the test rows.

    Sensitivity: each Linear quantized alone, mean KL divergence from fp32 on ``--calibration-rows``
    training texts (labels unused). For each ``--fp32-layers`` K: argmax agreement with fp32 on all
    training + validation texts (the choice rule: the smallest K reaching ``--min-agreement``), then
    macro-F1 and agreement on the test rows, and 1-thread reviews/s against torch fp32, passes
    alternating.
    """
    import numpy as np

    from reviewops.evaluation.metrics import sentiment_metrics
    from reviewops.models.int8 import quantize_int8
    from reviewops.models.sentiment import SentimentClassifier
    from reviewops.schema import LABELS

    fp32 = SentimentClassifier.load(model_dir, settings.sentiment)
    bs = args.batch_size
    calib = parts["train"]["text"].sample(n=min(args.calibration_rows, len(parts["train"])), random_state=0).tolist()
    _log(f"int8 sensitivity of {len(quantizable_linears(fp32.model))} Linear layers on {len(calib)} training texts")
    ranked = layer_sensitivity(fp32, calib, bs)
    choose = parts["train"]["text"].tolist() + parts["val"]["text"].tolist()
    test_texts, labels = parts["test"]["text"].tolist(), parts["test"]["label"].tolist()

    def labels_of(p: Any) -> list[str]:
        return [LABELS[i] for i in np.asarray(p).argmax(axis=1)]

    ref_choose, ref_test = labels_of(fp32.predict_proba(choose, bs)), labels_of(fp32.predict_proba(test_texts, bs))
    f1_fp32 = sentiment_metrics(labels, ref_test)["macro_f1"]
    models: dict[str, Any] = {"fp32": fp32}
    rows = []
    for k in args.fp32_layers:
        keep = tuple(r["layer"] for r in ranked[:k])
        clf = SentimentClassifier(quantize_int8(fp32.model, keep=("classifier", *keep)), fp32.tokenizer, fp32.cfg)
        models[f"int8_keep{k}"] = clf
        preds = labels_of(clf.predict_proba(test_texts, bs))
        q = sentiment_metrics(labels, preds)
        rows.append(
            {
                "fp32_layers": k,
                "kept": list(keep),
                "choice_agreement": _agreement(ref_choose, labels_of(clf.predict_proba(choose, bs))),
                "test_agreement": _agreement(ref_test, preds),
                "macro_f1": round(q["macro_f1"], 4),
                "f1_neutral": round(q["f1_neutral"], 4),
                "macro_f1_delta": round(q["macro_f1"] - f1_fp32, 4),
            }
        )
        _log(f"fp32 layers {k}: choice agreement {rows[-1]['choice_agreement']}, test Δ {rows[-1]['macro_f1_delta']}")
    speed_texts = test_texts[: args.speed_rows]
    runs = {
        name: ((lambda c=c: c.predict_proba(speed_texts, batch_size=bs)), len(speed_texts))
        for name, c in models.items()
    }
    _log(f"mixed int8 speed at 1 thread, {len(speed_texts)} rows x {args.repeats} passes each")
    rates = timed_rates(runs, 1, args.repeats)
    speedups = _speedups(rates, "fp32", tuple(models))
    for row in rows:
        row["speedup"] = speedups[f"int8_keep{row['fp32_layers']}"]
    chosen = next((r["fp32_layers"] for r in rows if r["choice_agreement"] >= args.min_agreement), None)
    return {
        "calibration_rows": len(calib),
        "choice_rows": len(choose),
        "min_agreement": args.min_agreement,
        "chosen_fp32_layers": chosen,
        "fp32_macro_f1": round(f1_fp32, 4),
        "ranking": ranked,
        "rows": rows,
        "rates": rates,
    }


def _mixed_lines(m: dict) -> list[str]:
    lines = [
        f"## torch int8 with the most sensitive Linear layers fp32 (ranked on {m['calibration_rows']} training "
        f"texts; choice: smallest K with agreement >= {m['min_agreement']} on {m['choice_rows']} train+val texts "
        f"-> K = {m['chosen_fp32_layers']})",
        f"torch fp32 macro-F1 {m['fp32_macro_f1']:.4f}; most sensitive: "
        + ", ".join(f"{r['layer']} ({r['kl']:.2e})" for r in m["ranking"][:6]),
        "| fp32 layers | choice agreement | test agreement | macro-F1 | Δ vs fp32 | F1 neu "
        "| 1 thread vs fp32 wall (CPU time) |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in m["rows"]:
        lines.append(
            f"| {r['fp32_layers']} | {r['choice_agreement']:.4f} | {r['test_agreement']:.4f} | {r['macro_f1']:.4f} "
            f"| {r['macro_f1_delta']:+.4f} | {r['f1_neutral']:.3f} | {_ratio(r['speedup'])} |"
        )
    return lines


def summarizer_part(settings: Any, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Generation reviews/s of the summarizer fp32 vs int8, titles changed, ROUGE-L against the reviewers'."""
    from reviewops.evaluation.metrics import rouge_scores
    from reviewops.models.int8 import quantize_int8
    from reviewops.models.pretrained import resolve_model_path
    from reviewops.models.summarizer import Summarizer

    path = resolve_model_path(settings.summarizer.model, settings)
    fp32 = Summarizer.load(path, settings.summarizer)
    int8 = Summarizer(quantize_int8(fp32.model, keep=()), fp32.tokenizer, fp32.cfg, fp32.kind)
    rows = test[test["summary"].notna()].head(args.summary_rows)
    texts, refs = rows["text"].tolist(), rows["summary"].astype(str).tolist()
    batch = settings.evaluate.batch_size
    titles: dict[str, list[str]] = {}
    runs = {
        name: ((lambda n=name, s=s: titles.__setitem__(n, s.summarize(texts, batch_size=batch))), len(texts))
        for name, s in (("fp32", fp32), ("int8", int8))
    }
    import torch

    _log(f"summarizer speed at {torch.get_num_threads()} thread(s), {len(texts)} rows x {args.repeats} passes each")
    rates = timed_rates(runs, torch.get_num_threads(), args.repeats)
    changed = [i for i, (a, b) in enumerate(zip(titles["fp32"], titles["int8"], strict=True)) if a != b]
    return {
        "model": str(path),
        "rows": len(texts),
        "threads": torch.get_num_threads(),
        "speed": {**rates, **_speedups(rates, runtimes=("fp32", "int8"))["int8"]},
        "titles_changed": len(changed),
        "rougeL": {name: round(rouge_scores(t, refs)["rougeL"], 4) for name, t in titles.items()},
        "examples": [{"fp32": titles["fp32"][i], "int8": titles["int8"][i]} for i in changed[:5]],
    }


def targets(report: dict) -> list[dict]:
    """The issue's targets for each int8 runtime against torch fp32, with the measured values and PASS / FAIL."""
    s = report["sentiment"]
    one = s["speed"]["1"]["vs_fp32"]
    out = []
    runtimes = [n for n in one if "int8" in n]
    for name in runtimes:
        out += [
            {
                "target": f"{name} >= {TARGET_SPEEDUP:g}x torch fp32 reviews/s (1 thread, wall)",
                "value": one[name]["speedup"],
            },
            {
                "target": f"{name} >= {TARGET_SPEEDUP:g}x torch fp32 reviews/s (1 thread, CPU time)",
                "value": one[name]["speedup_cpu_time"],
            },
            {
                "target": f"|{name} - torch fp32 macro-F1| <= {TARGET_F1_DELTA:g}",
                "value": abs(s["compared"][f"{name}_vs_fp32"]["macro_f1_delta"]),
                "max": True,
            },
        ]
    for k, t in enumerate(out):
        t["runtime"] = runtimes[k // 3]
        t["goal"] = TARGET_F1_DELTA if t.get("max") else TARGET_SPEEDUP
        t["verdict"] = "PASS" if (t["value"] <= t["goal"] if t.get("max") else t["value"] >= t["goal"]) else "FAIL"
    return out


def _sentiment_lines(s: dict) -> list[str]:
    """Quality of the four runtimes, their differences, and the speed table."""
    lines = [
        f"## Sentiment ({s['test_rows']} test rows; speed on {s['speed_rows']})",
        "| runtime | macro-F1 | accuracy | F1 neg | F1 neu | F1 pos |",
        "|---|---|---|---|---|---|",
    ]
    for name, q in s["quality"].items():
        lines.append(
            f"| {name} | {q['macro_f1']:.4f} | {q['accuracy']:.4f} | {q['f1_negative']:.3f} "
            f"| {q['f1_neutral']:.3f} | {q['f1_positive']:.3f} |"
        )
    lines += ["| compared | Δ macro-F1 | agreement | largest probability difference |", "|---|---|---|---|"]
    for pair, c in s["compared"].items():
        lines.append(
            f"| {pair} | {c['macro_f1_delta']:+.4f} | {c['agreement']:.4f} | {c['max_probability_difference']:.4f} |"
        )
    if s.get("rechecked_share"):
        lines.append(
            f"rows scored again in fp32 (int8 top-two margin < {s['recheck_margin']}): "
            + ", ".join(f"{name} {share:.1%}" for name, share in s["rechecked_share"].items())
        )
    if s.get("ffn_outliers"):
        lines.append(
            "FFN output inputs, max |x| / rms on training texts (the int8-sensitive layers): "
            + ", ".join(f"{r['layer'].rsplit('layer.', 1)[-1]}: {r['max_over_rms']}" for r in s["ffn_outliers"])
        )
    lines += [
        "| threads | runtime | reviews/s best, median (per CPU-s) | vs torch fp32 wall (CPU time) "
        "| vs onnx_fp32 wall (CPU time) |",
        "|---|---|---|---|---|",
    ]
    for threads, r in s["speed"].items():
        for name, rate in r["rates"].items():
            lines.append(
                f"| {threads} | {name} | {rate['best_per_s']}, {rate['median_per_s']} ({rate['per_cpu_s']}) "
                f"| {_ratio(r['vs_fp32'].get(name))} | {_ratio(r['vs_onnx_fp32'].get(name))} |"
            )
    return lines


def _ratio(speedup: dict[str, float] | None) -> str:
    return f"{speedup['speedup']}x ({speedup['speedup_cpu_time']}x)" if speedup else "-"


def render(report: dict) -> str:
    """The printed report: machine, sentiment quality and speed, summarizer, targets."""
    m = report["machine"]
    lines = [
        f"# int8 vs fp32, torch and ONNX Runtime ({m['cpu']}, {m['usable_cores']} usable cores, "
        f"load {m['load_average_at_start']})",
        f"command: {report['command']}",
        *(_sentiment_lines(report["sentiment"]) if report.get("sentiment") else []),
    ]
    if report.get("summarizer"):
        g = report["summarizer"]
        f, i = g["speed"]["fp32"], g["speed"]["int8"]
        lines += [
            f"## Summarizer, torch ({g['rows']} reviews, {g['threads']} threads)",
            f"fp32 {f['best_per_s']} reviews/s, int8 {i['best_per_s']} reviews/s: {g['speed']['speedup']}x "
            f"({g['speed']['speedup_cpu_time']}x in CPU time); "
            f"titles changed {g['titles_changed']}/{g['rows']}; ROUGE-L fp32 {g['rougeL']['fp32']:.4f}, "
            f"int8 {g['rougeL']['int8']:.4f}",
        ]
        lines += [f"- `{e['fp32']}` -> `{e['int8']}`" for e in g["examples"]]
    if report.get("mixed"):
        lines += _mixed_lines(report["mixed"])
    if not report["targets"]:
        return "\n".join(lines)
    lines += ["## Targets (judged against torch fp32, the current default)"]
    lines += [f"- {t['target']}: {t['value']} -> {t['verdict']}" for t in report["targets"]]
    names = dict.fromkeys(t["runtime"] for t in report["targets"])
    passing = [n for n in names if all(t["verdict"] == "PASS" for t in report["targets"] if t["runtime"] == n)]
    lines.append(f"int8 runtimes meeting every target: {', '.join(passing) or 'none'}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """CPU model, usable cores and load at the start: what the figures ran on."""
    names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln]
    return {
        "cpu": names[0] if names else platform.processor(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="The labelled Fine Food file.")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="Keep the fine-tuned model here and reuse it on later runs (default: train in a temporary directory).",
    )
    parser.add_argument("--test-size", type=float, default=0.45, help="Test share of the grouped split (< 0.5).")
    parser.add_argument("--split-seed", type=int, default=42, help="Seed of the grouped split.")
    parser.add_argument("--speed-rows", type=int, default=256, help="Test texts timed per pass (sentiment).")
    parser.add_argument("--batch-size", type=int, default=16, help="Sentiment rows per forward pass.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed passes of each model per setting.")
    parser.add_argument("--summary-rows", type=int, default=24, help="Test reviews the summarizer titles per pass.")
    parser.add_argument("--skip-summarizer", action="store_true", help="Leave out the summarizer part.")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Override a params.yaml setting (repeatable), e.g. train.profile=quick for a smoke run.",
    )
    parser.add_argument(
        "--onnx-cache",
        type=Path,
        default=None,
        help="Keep the ONNX exports here (default: a temporary directory, exported afresh each run).",
    )
    parser.add_argument(
        "--fp32-layers",
        type=lambda v: [int(x) for x in v.split(",")],
        default=None,
        metavar="K,K,...",
        help="Also run torch int8 keeping the K most int8-sensitive Linear layers in fp32, for each K "
        "(e.g. 0,2,4,8,12); the ranking and the choice of K use training/validation texts only.",
    )
    parser.add_argument(
        "--int8-fp32-layers",
        type=lambda v: [] if v == "none" else [int(x) for x in v.split(",")],
        nargs="+",
        default=None,
        metavar="K,K|none",
        help="Run torch and ONNX int8 once per list of encoder layers whose FFN output stays fp32 "
        "(e.g. 0 4,5 none), side by side (default: sentiment.int8_fp32_layers of the settings).",
    )
    parser.add_argument(
        "--int8-recheck-margin",
        type=float,
        default=None,
        metavar="M",
        help="Also run each int8 runtime as the service does with sentiment.int8_recheck_margin M: rows whose "
        "int8 top-two probability margin is below M scored again in fp32 (runtimes named ...+recheck; "
        "default: the settings' margin, 0.5; 0: leave them out).",
    )
    parser.add_argument("--calibration-rows", type=int, default=128, help="Training texts for the sensitivity ranking.")
    parser.add_argument(
        "--min-agreement", type=float, default=0.995, help="Choice rule: smallest K with this agreement on train+val."
    )
    parser.add_argument("--skip-runtimes", action="store_true", help="Leave out the four-runtime comparison.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the report here.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the CPU-time rates count this process's threads
    if not args.data.is_file():
        print(f"skipped: {args.data} not found (the shared Amazon sample lives in ../shared/data/)")
        return 0
    report: dict[str, Any] = {"command": "python " + " ".join(sys.argv), "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="reviewops-int8-") as tmp:
        work = Path(tmp)
        settings, parts = split_rows(args.data, work, args)
        _log(f"split: {len(parts['train'])} train, {len(parts['val'])} val, {len(parts['test'])} test rows")
        model_dir = fine_tuned(settings, parts, args.model, work, args.data)
        if not args.skip_runtimes:
            cache = args.onnx_cache or work / "onnx"
            report["sentiment"] = sentiment_part(model_dir, settings, parts["test"], args, cache)
            calib = parts["train"]["text"].sample(n=min(args.calibration_rows, len(parts["train"])), random_state=0)
            report["sentiment"]["ffn_outliers"] = ffn_outliers(model_dir, settings, calib.tolist(), args.batch_size)
        if args.fp32_layers:
            report["mixed"] = mixed_part(model_dir, settings, parts, args)
        if not args.skip_summarizer:
            report["summarizer"] = summarizer_part(settings, parts["test"], args)
    report["targets"] = targets(report) if "sentiment" in report else []
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
