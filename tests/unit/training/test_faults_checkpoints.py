"""Kills during training: incomplete checkpoints are set aside, runs left RUNNING are marked FAILED."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import mlflow

from reviewops.training.checkpoints import checkpoint_problem
from reviewops.training.summarizer import train_summarizer
from reviewops.training.train import run_train
from tests.unit.training.helpers import quick_settings, synthetic_processed


def _fake_partial_checkpoint(ckpt_dir: Path, step: int) -> Path:
    """What a SIGKILL during ``save_model`` leaves: the config and a half-written temp file."""
    partial = ckpt_dir / f"checkpoint-{step}"
    partial.mkdir(parents=True)
    (partial / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (partial / "model.safetensors.tmp").write_bytes(b"\0" * 128)
    return partial


def test_resume_skips_a_partial_checkpoint_and_uses_the_last_complete_one(
    tmp_path: Path, tiny: dict[str, Path]
) -> None:
    df = synthetic_processed(40)
    out = tmp_path / "out"
    ckpt = out / "checkpoints" / "summarizer"
    first = train_summarizer(quick_settings(tmp_path, tiny["causal"], tiny["encoder"]), df[:32], df[32:], out)
    assert first.global_step == 4 and (ckpt / "checkpoint-4" / "trainer_state.json").is_file()
    _fake_partial_checkpoint(ckpt, 6)

    # Before: "Can't find a valid checkpoint at .../checkpoint-6" on this and every later run.
    longer = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], summarizer_max_steps=8)
    second = train_summarizer(longer, df[:32], df[32:], out)
    assert second.resumed_from is not None and second.resumed_from.endswith("checkpoint-4")
    assert second.global_step == 8
    assert len(second.skipped_checkpoints) == 1
    assert second.skipped_checkpoints[0].startswith("checkpoint-6: temporary file")
    assert "model.safetensors.tmp" in second.skipped_checkpoints[0]
    # Set aside for inspection, out of the Trainer's way: the new checkpoint-6 is a clean one.
    assert (ckpt / "incomplete" / "checkpoint-6" / "model.safetensors.tmp").is_file()
    assert not list(ckpt.glob("checkpoint-*/*.tmp"))
    assert checkpoint_problem(ckpt / "checkpoint-8") is None

    # A third run has nothing left to skip.
    third = train_summarizer(longer, df[:32], df[32:], out)
    assert third.skipped_checkpoints == [] and third.resumed_from.endswith("checkpoint-8")


def test_checkpoint_completeness_rules(tmp_path: Path, tiny: dict[str, Path]) -> None:
    df = synthetic_processed(24)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], summarizer_max_steps=1, eval_steps=1)
    train_summarizer(settings, df[:16], df[16:], tmp_path / "out")
    good = tmp_path / "out" / "checkpoints" / "summarizer" / "checkpoint-1"
    assert checkpoint_problem(good) is None

    def variant(name: str) -> Path:
        return Path(shutil.copytree(good, tmp_path / name))

    truncated = variant("truncated")
    weights = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    assert "model.safetensors is truncated" in checkpoint_problem(truncated)

    no_state = variant("no-state")
    (no_state / "trainer_state.json").unlink()
    assert checkpoint_problem(no_state) == "no trainer_state.json"

    half_state = variant("half-state")
    (half_state / "trainer_state.json").write_text('{"global_step": 1, "log_hist')
    assert checkpoint_problem(half_state) == "trainer_state.json is unreadable"

    no_weights = variant("no-weights")
    (no_weights / "model.safetensors").unlink()
    assert checkpoint_problem(no_weights) == "no model weights"

    temp = variant("temp")
    (temp / "tmpk2x9_optimizer").write_bytes(b"")
    assert "tmpk2x9_optimizer" in checkpoint_problem(temp)


def _killed_run(project: Path) -> tuple[str, int]:
    """Start a tracked run in a child process and SIGKILL it: the run stays RUNNING."""
    code = (
        "import os, signal, mlflow\n"
        "from reviewops.config import Settings\n"
        "from reviewops.registry.tracking import configure_mlflow, process_tags\n"
        "configure_mlflow(Settings())\n"
        "run = mlflow.start_run(run_name='train', tags=process_tags(**{'reviewops.stage': 'train'}))\n"
        "print(run.info.run_id, os.getpid(), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=180)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id, pid = proc.stdout.split()
    return run_id, int(pid)


def test_killed_training_run_is_marked_failed_and_partial_checkpoint_reported(
    project: Path, tiny: dict[str, Path]
) -> None:
    settings = quick_settings(project, tiny["causal"], tiny["encoder"])
    out = project / "out"
    run_train(settings, processed_dir=project / "processed", out_dir=out, only="sentiment", log_models=False)
    ckpt = out / "checkpoints" / "sentiment"
    assert (ckpt / "checkpoint-6").is_dir()

    # A training killed while writing checkpoint-8: its run stays RUNNING, its checkpoint half-written.
    killed, pid = _killed_run(project)
    _fake_partial_checkpoint(ckpt, 8)
    client = mlflow.MlflowClient()
    assert client.get_run(killed).info.status == "RUNNING"
    experiment = client.get_run(killed).info.experiment_id
    # Runs that must be left alone: a live process on this host, and a process on another host.
    alive = client.create_run(
        experiment, tags={"reviewops.pid": str(os.getpid()), "reviewops.host": socket.gethostname()}
    ).info.run_id
    elsewhere = client.create_run(
        experiment, tags={"reviewops.pid": str(pid), "reviewops.host": "some-other-host"}
    ).info.run_id

    longer = quick_settings(project, tiny["causal"], tiny["encoder"], sentiment_max_steps=10)
    result = run_train(longer, processed_dir=project / "processed", out_dir=out, only="sentiment", log_models=False)

    assert result["failed_stale_runs"] == [killed]
    dead = client.get_run(killed)
    assert dead.info.status == "FAILED" and dead.info.end_time is not None
    assert f"process {pid} on {socket.gethostname()}" in dead.data.tags["reviewops.killed"]
    assert client.get_run(alive).info.status == "RUNNING"
    assert client.get_run(elsewhere).info.status == "RUNNING"
    # The new runs record their process, for the next start's check.
    parent = client.get_run(result["run_id"])
    assert parent.data.tags["reviewops.pid"] == str(os.getpid()) and parent.data.tags["reviewops.stage"] == "train"

    summary = result["sentiment"]
    assert summary["resumed_from"].endswith("checkpoint-6")
    assert [s.split(":")[0] for s in summary["skipped_checkpoints"]] == ["checkpoint-8"]
    child = client.get_run(result["child_run_ids"]["sentiment"])
    assert child.data.tags["reviewops.skipped_checkpoints"].startswith("checkpoint-8: temporary file")
    assert child.data.params["resumed_from"].endswith("checkpoint-6")
