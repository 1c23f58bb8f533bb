"""``reviewops evaluate`` on a corrupt model directory: one ``error:`` line naming it, exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reviewops.errors import ReviewOpsError
from reviewops.evaluation.evaluate import evaluate_models
from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder
from tests.unit.evaluation.fakes import make_settings, make_test_df


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Intact tiny models, a summarizer with half its weights file and a sentiment model with a garbage config."""
    root = tmp_path_factory.mktemp("corrupt-models")
    summarizer = build_tiny_causal_lm(root / "summarizer")
    sentiment = build_tiny_encoder(root / "sentiment")
    truncated = Path(shutil.copytree(summarizer, root / "summarizer-truncated"))
    weights = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    garbage = Path(shutil.copytree(sentiment, root / "sentiment-garbage-config"))
    (garbage / "config.json").write_text("{\x00\x00 not json")
    return {"summarizer": summarizer, "sentiment": sentiment, "truncated": truncated, "garbage": garbage}


def test_cli_evaluate_corrupt_models_print_one_error_line(models: dict[str, Path], tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    processed.mkdir()
    make_test_df(6).to_parquet(processed / "test.parquet")
    cases = {
        "truncated": (
            ["--summarizer", str(models["truncated"]), "--sentiment", str(models["sentiment"])],
            "model.safetensors is truncated",
        ),
        "garbage": (
            ["--summarizer", str(models["summarizer"]), "--sentiment", str(models["garbage"])],
            "not a valid JSON file",
        ),
    }
    env = {**os.environ, "COLUMNS": "80"}
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reviewops",
                "--set",
                "evaluate.untuned_baseline=false",
                "evaluate",
                "--processed-dir",
                str(processed),
                *args,
                "--out",
                str(tmp_path / f"{name}.json"),
                "--no-log",
                "--no-compare-champion",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, _) in cases.items()
    }
    try:
        outputs = {name: proc.communicate(timeout=300) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.kill()
    for name, (_, problem) in cases.items():
        _, stderr = outputs[name]
        assert procs[name].returncode == 2, (name, stderr)
        assert "Traceback" not in stderr, (name, stderr)
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, (name, stderr)
        assert str(models[name]) in errors[0] and problem in errors[0], (name, errors[0])
        assert not (tmp_path / f"{name}.json").exists()


def test_corrupt_untuned_baseline_is_named_too(models: dict[str, Path]) -> None:
    with pytest.raises(ReviewOpsError, match=r"untuned \(baseline\) summarizer model directory .*truncated"):
        evaluate_models(
            make_settings(4), make_test_df(4), models["summarizer"], None, base_summarizer_path=models["truncated"]
        )
