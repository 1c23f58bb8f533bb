"""SentimentClassifier shared by threads (as BentoML's batchable workers share it) answers as if alone."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from reviewops.config import SentimentConfig
from reviewops.models.sentiment import POOLING_ATTR, SentimentClassifier
from reviewops.testing.tiny import build_tiny_encoder

N_THREADS = 8
ROUNDS = 4
WORDS = [
    "great",
    "coffee",
    "smooth",
    "rich",
    "stale",
    "tea",
    "box",
    "arrived",
    "crushed",
    "tasted",
    "awful",
    "fine",
    "okay",
    "味道",
    "很好",
]


def _texts(thread: int, n: int = 6) -> list[str]:
    """Texts whose lengths differ a lot within and across threads, so every batch pads differently."""
    lengths = [1 + (thread * 7 + i * 13) % 60 for i in range(n)]
    return [" ".join(WORDS[(thread + i + j) % len(WORDS)] for j in range(k)) for i, k in enumerate(lengths)]


def mean_pooled_checkpoint(directory: Path) -> Path:
    """A tiny random-weight BERT classifier saved the way training saves ``pooling=mean``."""
    from transformers import AutoModelForSequenceClassification

    path = build_tiny_encoder(directory)
    model = AutoModelForSequenceClassification.from_pretrained(str(path))
    setattr(model.config, POOLING_ATTR, "mean")
    model.save_pretrained(str(path))
    return path


def race(clf: SentimentClassifier, rounds: int = ROUNDS, n_threads: int = N_THREADS) -> tuple[int, int]:
    """Run ``predict_proba`` from ``n_threads`` threads at once; return (rows differing, rows in all).

    Each thread has its own texts and batch size; its answers are compared bit for bit with the
    same call made with no other thread running.
    """
    inputs = [(_texts(t), 2 + t % 3) for t in range(n_threads)]
    expected = [clf.predict_proba(texts, batch_size=bs) for texts, bs in inputs]
    barrier = threading.Barrier(n_threads)
    got: dict[tuple[int, int], np.ndarray] = {}
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        texts, batch_size = inputs[thread]
        try:
            for round_ in range(rounds):
                barrier.wait(timeout=60)  # all threads enter predict_proba together, every round
                got[round_, thread] = clf.predict_proba(texts, batch_size=batch_size)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    differing = sum(int((got[r, t] != expected[t]).any(axis=1).sum()) for r in range(rounds) for t in range(n_threads))
    return differing, sum(len(inputs[t][0]) for t in range(n_threads)) * rounds


@pytest.fixture(scope="module")
def mean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mean_pooled_checkpoint(tmp_path_factory.mktemp("threads") / "encoder")


def test_threads_sharing_one_classifier_get_the_sequential_answers_bit_for_bit(mean_dir: Path) -> None:
    clf = SentimentClassifier.load(mean_dir, SentimentConfig(max_length=64))
    assert getattr(clf.model.config, POOLING_ATTR) == "mean"
    differing, total = race(clf)
    assert total == N_THREADS * ROUNDS * 6
    assert differing == 0, f"{differing} of {total} answers changed when threads shared the classifier"


def test_mean_pooled_model_keeps_no_per_call_state(mean_dir: Path) -> None:
    import torch

    clf = SentimentClassifier.load(mean_dir, SentimentConfig(max_length=64))
    before = {name: dict(vars(module)) for name, module in clf.model.named_modules()}
    clf.predict_proba(_texts(0) + _texts(1), batch_size=4)
    after = {name: dict(vars(module)) for name, module in clf.model.named_modules()}
    assert before.keys() == after.keys()
    for name, attrs in after.items():
        assert attrs.keys() == before[name].keys(), f"{name} gained {attrs.keys() - before[name].keys()}"
        for key, value in attrs.items():
            if isinstance(value, torch.Tensor):
                assert value is before[name][key], f"{name}.{key} was replaced during a call"
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in clf.model.modules())
