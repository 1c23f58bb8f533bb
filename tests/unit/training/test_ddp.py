"""Real two-process DDP training on CPU (torchrun, gloo) with the tiny models: one MLflow run, one model each.

Three launches (both models; a resumed sentiment run; a new sentiment job that stops early):
about 100 s on two shared CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reviewops.models.summarizer import Summarizer
from reviewops.schema import LABELS
from tests.unit.training.helpers import quick_settings

ROOT = Path(__file__).resolve().parents[3]
TORCHRUN = Path(sys.executable).with_name("torchrun")

pytestmark = pytest.mark.slow


def _torchrun(project: Path, tiny: dict[str, Path], *train_args: str, sets: tuple[str, ...] = ()) -> dict:
    """``torchrun --standalone --nproc_per_node 2 -m reviewops ... train --profile quick --json``: rank 0's result."""
    overrides = {
        "summarizer.model": tiny["causal"],
        "sentiment.model": tiny["encoder"],
        "summarizer.max_new_tokens": 4,
        "sentiment.max_length": 32,
        **dict(s.split("=", 1) for s in sets),
    }
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "reviewops", "--params"]
    cmd += [str(ROOT / "params.yaml"), *[a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]]
    cmd += ["train", "--profile", "quick", "--json", "--processed-dir", str(project / "processed")]
    cmd += ["--out", str(project / "out"), *train_args]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=400, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout  # only rank 0 prints its result
    return {**json.loads(lines[0]), "stderr": proc.stderr}


def _checkpoints(project: Path) -> list[Path]:
    """The sentiment checkpoints left, by step."""
    found = (project / "out" / "checkpoints" / "sentiment").glob("checkpoint-*")
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def _assert_one_run_per_training(result: dict) -> None:
    """One parent run (rank 0's) with one child per model; what it logged about the two processes."""
    import mlflow

    client = mlflow.MlflowClient()
    runs = client.search_runs([result["experiment_id"]])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in parents] == [result["run_id"]]  # rank 1 started no run
    children = {r.data.params["model"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == result["run_id"]}
    assert set(children) == {"summarizer", "sentiment"} and len(runs) == 3
    assert all(r.info.status == "FINISHED" for r in runs)
    params = parents[0].data.params
    assert (params["train/world_size"], params["train/ddp_backend"]) == ("2", "gloo")
    # quick profile: 8 rows per process and step, two processes; max_steps stays per process
    assert children["sentiment"].data.params["effective_batch_size"] == "16"
    assert parents[0].data.metrics["train/summarizer_global_step"] == 4
    assert parents[0].data.metrics["train/sentiment_global_step"] == 6
    assert len(client.get_metric_history(children["sentiment"].info.run_id, "eval/macro_f1")) == 3  # steps 2, 4, 6


def _assert_early_stop_agreed(project: Path, tiny: dict[str, Path]) -> None:
    """A new job (thresholds tuned on gathered predictions, patience 1): rank 0 clears the old checkpoints,
    every rank stops at the same evaluation."""
    knobs = (
        "train.profiles.quick.sentiment_max_steps=20",
        "train.profiles.quick.sentiment_patience=1",
        "sentiment.checkpoint=best",  # early stopping is the best-checkpoint policy's
    )
    result = _torchrun(project, tiny, "--only", "sentiment", sets=(*knobs, "sentiment.tune_thresholds=true"))
    step = int(result["metrics"]["train/sentiment_global_step"])
    assert step < 20 and f"rank 1/2 (gloo): sentiment done, {step} steps" in result["stderr"]
    assert 0.0 <= result["metrics"]["train/sentiment_threshold_val_macro_f1_after"] <= 1.0
    assert _checkpoints(project)[-1].name == f"checkpoint-{step}" and len(_checkpoints(project)) <= 2


def test_torchrun_two_gloo_processes_train_into_one_mlflow_run_resume_and_stop_together(
    project: Path, tiny: dict[str, Path]
) -> None:
    import mlflow

    result = _torchrun(project, tiny, "--report", str(project / "train.json"))
    assert (result["world_size"], result["ddp_backend"]) == (2, "gloo")
    assert "rank 1/2 (gloo): summarizer done, 4 steps" in result["stderr"]  # rank 1 trained too, in step
    _assert_one_run_per_training(result)

    # One report (rank 0's) and loadable models, once per model.
    assert json.loads((project / "train.json").read_text())["run_id"] == result["run_id"]
    settings = quick_settings(project, tiny["causal"], tiny["encoder"])
    assert Summarizer.load(result["model_dirs"]["summarizer"], settings.summarizer).summarize(["好吃"])[0]
    texts = pd.DataFrame({"text": ["Love it, great flavor", "太难吃了"]})
    assert set(mlflow.pyfunc.load_model(result["model_uris"]["sentiment"]).predict(texts)["label"]) <= set(LABELS)
    assert sorted(p.name for p in (project / "out").iterdir()) == ["checkpoints", "sentiment", "summarizer"]
    # The Trainer itself ran distributed (one RNG state per rank); rank 0 alone pruned to save_total_limit=2.
    ckpts = _checkpoints(project)
    assert len(ckpts) == 2 and ckpts[-1].name == "checkpoint-6"
    assert {p.name for p in ckpts[-1].glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}

    # More steps: every rank resumes from the checkpoint rank 0 chose and stops at the same step.
    result = _torchrun(project, tiny, "--only", "sentiment", sets=("train.profiles.quick.sentiment_max_steps=8",))
    assert result["metrics"]["train/sentiment_global_step"] == 8
    assert "rank 1/2 (gloo): sentiment done, 8 steps" in result["stderr"]
    child = mlflow.MlflowClient().get_run(result["child_run_ids"]["sentiment"])
    assert child.data.params["resumed_from"] == str(ckpts[-1])
    assert len(_checkpoints(project)) == 2 and _checkpoints(project)[-1].name == "checkpoint-8"
    _assert_early_stop_agreed(project, tiny)
