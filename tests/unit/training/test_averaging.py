"""Weight averaging over the end of sentiment training (``sentiment.checkpoint: average``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from reviewops.errors import ReviewOpsError
from reviewops.training.averaging import average_start, snapshot_steps, weight_averager
from reviewops.training.sentiment import train_sentiment
from tests.unit.training.helpers import quick_settings, synthetic_processed


def test_snapshot_steps_from_the_start_fraction_with_the_last_step_always() -> None:
    assert snapshot_steps(300, 25, 0.5) == [150, 175, 200, 225, 250, 275, 300]
    assert snapshot_steps(10, 3, 0.5) == [6, 9, 10]  # 10 is no multiple of 3 but is the final weights
    assert snapshot_steps(6, 1, 0.0) == [1, 2, 3, 4, 5, 6]
    assert snapshot_steps(6, 25, 0.5) == [6]  # fewer steps than one evaluation interval: the final weights
    assert average_start(300, 0.0) == 1
    for bad in (-0.1, 1.0):
        with pytest.raises(ReviewOpsError, match="average_from"):
            average_start(300, bad)


def _run(averager: object, model: object, steps: range, values: dict[int, float], max_steps: int = 6) -> None:
    """Drive ``averager`` like the Trainer: train begin at ``steps.start - 1``, one step end per step."""
    import torch

    state = SimpleNamespace(global_step=steps.start - 1, max_steps=max_steps, is_world_process_zero=True)
    averager.on_train_begin(None, state, None, model=model)  # type: ignore[attr-defined]
    for step in steps:
        with torch.no_grad():
            model.weight.fill_(values[step])  # type: ignore[attr-defined]
        state.global_step = step
        averager.on_step_end(None, state, None, model=model)  # type: ignore[attr-defined]


def test_the_average_survives_a_resume_and_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    import torch

    values = {1: 1.0, 2: 2.0, 3: 3.0, 4: 5.0, 5: 8.0, 6: 13.0}

    def model() -> torch.nn.Linear:
        m = torch.nn.Linear(2, 2)
        m.bias.requires_grad_(False)  # frozen weights are not averaged: they keep their value
        with torch.no_grad():
            m.bias.fill_(-7.0)
        return m

    whole = model()
    averager = weight_averager(tmp_path / "a", every=1, average_from=0.5)  # steps 3..6
    _run(averager, whole, range(1, 7), values)
    averager.on_train_end(None, None, None, model=whole)
    assert torch.allclose(whole.weight, torch.full((2, 2), (3 + 5 + 8 + 13) / 4))
    assert torch.equal(whole.bias, torch.full((2,), -7.0))
    assert sorted(p.name for p in (tmp_path / "a").glob("weight_average-*.pt")) == [
        "weight_average-5.pt",
        "weight_average-6.pt",
    ]  # the two newest sums only

    # killed after step 4 (its sum written before checkpoint-4), a new process resumes at step 4
    killed = model()
    _run(weight_averager(tmp_path / "b", every=1, average_from=0.5), killed, range(1, 5), values)
    resumed = model()
    averager = weight_averager(tmp_path / "b", every=1, average_from=0.5)
    _run(averager, resumed, range(5, 7), values)
    averager.on_train_end(None, None, None, model=resumed)
    assert torch.equal(resumed.weight, whole.weight)


def test_resuming_without_the_saved_sum_restarts_the_average_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    m = torch.nn.Linear(2, 2)
    averager = weight_averager(tmp_path, every=1, average_from=0.5)
    with caplog.at_level("WARNING"):
        _run(averager, m, range(5, 7), {5: 2.0, 6: 4.0})
    averager.on_train_end(None, None, None, model=m)
    assert "weight average restarts" in caplog.text
    assert torch.allclose(m.weight, torch.full((2, 2), 3.0))


def test_checkpoint_average_keeps_the_mean_of_the_last_checkpoints(tmp_path: Path, tiny: dict[str, Path]) -> None:
    """A real training: 6 steps, snapshots at steps 5 and 6 (average_from 0.75): saved = their mean."""
    import torch
    from transformers import AutoModelForSequenceClassification

    df = synthetic_processed(40)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], sentiment_max_steps=6, sentiment_eval_steps=1)
    update = {"checkpoint": "average", "average_from": 0.75, "pooling": "mean"}
    settings = settings.model_copy(update={"sentiment": settings.sentiment.model_copy(update=update)})
    result = train_sentiment(settings, df, df[32:], tmp_path / "out", resume=False)
    assert result.global_step == 6
    evals = [h for h in result.log_history if "eval_macro_f1" in h]
    assert [h["step"] for h in evals] == [1, 2, 3, 4, 5, 6, 6]  # the last one scores the averaged weights
    assert result.metrics["eval/loss"] == pytest.approx(evals[-1]["eval_loss"])
    ckpts = tmp_path / "out" / "checkpoints" / "sentiment"
    saved = AutoModelForSequenceClassification.from_pretrained(result.model_dir).state_dict()
    five = AutoModelForSequenceClassification.from_pretrained(ckpts / "checkpoint-5").state_dict()
    six = AutoModelForSequenceClassification.from_pretrained(ckpts / "checkpoint-6").state_dict()
    moved = [k for k in saved if not torch.equal(five[k], six[k])]
    assert moved  # training changed weights between the two steps
    for name in saved:
        assert torch.allclose(saved[name], (five[name] + six[name]) / 2, atol=1e-6), name
