"""Summarizer fine-tuning: resume from checkpoints, LoRA merge, causal label masking, seq2seq."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reviewops.models.summarizer import Summarizer
from reviewops.testing.tiny import build_tiny_seq2seq
from reviewops.training.summarizer import train_summarizer
from tests.unit.training.helpers import quick_settings, synthetic_processed


def test_summarizer_resumes_from_checkpoint(tmp_path: Path, tiny: dict[str, Path]) -> None:
    df = synthetic_processed(40)
    out = tmp_path / "out"
    first = train_summarizer(quick_settings(tmp_path, tiny["causal"], tiny["encoder"]), df[:32], df[32:], out)
    assert first.global_step == 4 and first.resumed_from is None
    assert (out / "checkpoints" / "summarizer" / "checkpoint-4").is_dir()

    longer = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], summarizer_max_steps=6)
    second = train_summarizer(longer, df[:32], df[32:], out)
    assert second.resumed_from is not None and second.resumed_from.endswith("checkpoint-4")
    assert second.global_step == 6
    # Only steps 5-6 ran in the second call: its history continues the first one's.
    assert [h["step"] for h in second.log_history if "loss" in h][0] <= 5
    assert len(list((out / "checkpoints" / "summarizer").glob("checkpoint-*"))) <= 2

    # New training data (a retrain after drift) must not continue the old run; nor may resume=False.
    other = synthetic_processed(40, seed=1)
    retrain = train_summarizer(longer, other[:32], other[32:], out)
    assert retrain.resumed_from is None and retrain.global_step == 6
    assert [p.name for p in (out / "checkpoints" / "summarizer").glob("checkpoint-*")] != []


def test_lora_summarizer_is_merged_before_saving(tmp_path: Path, tiny: dict[str, Path]) -> None:
    df = synthetic_processed(24)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], summarizer_max_steps=2, eval_steps=1)
    settings = settings.model_copy(
        update={"summarizer": settings.summarizer.model_copy(update={"lora": True, "lora_r": 4, "lora_alpha": 8})}
    )
    result = train_summarizer(settings, df[:16], df[16:], tmp_path / "out")
    saved = Path(result.model_dir)
    assert not (saved / "adapter_config.json").exists() and (saved / "model.safetensors").is_file()
    assert Summarizer.load(saved, settings.summarizer).summarize(["Love it"])[0].strip()


def test_causal_labels_mask_prompt_and_padding(tmp_path: Path, tiny: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    from reviewops.training.summarizer import summarizer_rows

    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"])
    tok = AutoTokenizer.from_pretrained(tiny["causal"])
    rows = summarizer_rows(synthetic_processed(3), tok, settings, "causal")
    for row in rows:
        labels = row["labels"]
        n_prompt = sum(1 for x in labels if x == -100)
        assert n_prompt > 5 and all(x == -100 for x in labels[:n_prompt])
        assert labels[-1] == tok.eos_token_id and labels[n_prompt:] == row["input_ids"][n_prompt:]
        assert len(row["input_ids"]) == len(labels) == len(row["attention_mask"])


def test_seq2seq_summarizer_trains_and_loads(tmp_path: Path, tiny: dict[str, Path]) -> None:
    bart = build_tiny_seq2seq(tmp_path / "bart")
    df = synthetic_processed(24)
    settings = quick_settings(tmp_path, bart, tiny["encoder"], summarizer_max_steps=2, eval_steps=1)
    result = train_summarizer(settings, df[:16], df[16:], tmp_path / "out")
    assert result.global_step == 2 and np.isfinite(result.metrics["eval/loss"])
    out = Summarizer.load(result.model_dir, settings.summarizer)
    assert out.kind == "seq2seq" and out.summarize(["Love it"])[0].strip()


def test_balance_by_label_repeats_minority_rows_up_to_the_majority_count() -> None:
    from reviewops.training.summarizer import balance_by_label

    df = synthetic_processed(40)
    skewed = pd.concat([df[df.label == "positive"]] * 4 + [df[df.label != "positive"]], ignore_index=True)
    skewed["review_id"] = [f"r-{i:04d}" for i in range(len(skewed))]
    out = balance_by_label(skewed, seed=42)
    counts = out["label"].value_counts()
    assert counts.nunique() == 1 and counts.iloc[0] == (skewed.label == "positive").sum()
    assert set(skewed["review_id"]) <= set(out["review_id"])  # nothing dropped
    shuffled = balance_by_label(skewed.sample(frac=1.0, random_state=1), seed=42)
    assert sorted(shuffled["review_id"]) == sorted(out["review_id"])  # row order does not matter
    unlabelled = skewed.assign(label=None)
    assert len(balance_by_label(unlabelled, seed=42)) == len(skewed)  # no labels: as it was
    assert len(balance_by_label(skewed, seed=42, strength=0.0)) == len(skewed)
    half = balance_by_label(skewed, seed=42, strength=0.5)["label"].value_counts()
    n_pos, n_neg = (skewed.label == "positive").sum(), (skewed.label == "negative").sum()
    assert half["positive"] == n_pos and half["negative"] == round((n_pos * n_neg) ** 0.5)  # geometric mean


def test_summarizer_trains_on_balanced_rows_when_asked(tmp_path: Path, tiny: dict[str, Path]) -> None:
    df = synthetic_processed(40)
    skewed = pd.concat([df[df.label == "positive"]] * 3 + [df[df.label != "positive"]], ignore_index=True)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], summarizer_max_steps=1, max_train_samples=None)
    settings = settings.model_copy(update={"summarizer": settings.summarizer.model_copy(update={"label_balance": 1.0})})
    result = train_summarizer(settings, skewed, df[32:], tmp_path / "out", resume=False)
    assert result.n_train == 3 * (skewed.label == "positive").sum()  # 3 labels x the positive count


def test_label_balance_defaults_to_half_and_refuses_values_outside_0_1() -> None:
    import pytest
    from pydantic import ValidationError

    from reviewops.config import SummarizerConfig, load_settings

    assert SummarizerConfig().label_balance == 0.5 == load_settings("params.yaml").summarizer.label_balance
    for bad in (-0.1, 1.5):
        with pytest.raises(ValidationError):
            SummarizerConfig(label_balance=bad)
