"""Where the models service finds its models: override directories, the model store, stored settings."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest

from reviewops.config import SummarizerConfig
from reviewops.serving import loading
from reviewops.serving.loading import (
    CONFIG_FILE,
    SENTIMENT_DIR_ENV,
    SUMMARIZER_DIR_ENV,
    SUMMARIZER_TAG_ENV,
    read_section,
    resolve_model,
    stored_info,
)


def test_read_section_prefers_the_stored_settings(tmp_path, caplog):
    fallback = SummarizerConfig()
    assert read_section(tmp_path, SummarizerConfig, fallback) is fallback
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"max_new_tokens": 7}), encoding="utf-8")
    assert read_section(tmp_path, SummarizerConfig, fallback).max_new_tokens == 7
    # An old or foreign file does not stop serving: the served settings are used, with a warning.
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"no_such_key": 1}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="reviewops.serving.loading"):
        assert read_section(tmp_path, SummarizerConfig, fallback) is fallback
    assert any(r.getMessage().startswith(f"ignoring {tmp_path / CONFIG_FILE}") for r in caplog.records)


def test_override_dirs_and_store_tag(monkeypatch):
    monkeypatch.setenv(SUMMARIZER_DIR_ENV, "/a")
    monkeypatch.delenv(SENTIMENT_DIR_ENV, raising=False)
    assert not loading.override_dirs_set()
    monkeypatch.setenv(SENTIMENT_DIR_ENV, "/b")
    assert loading.override_dirs_set()
    monkeypatch.delenv(SUMMARIZER_TAG_ENV, raising=False)
    assert loading.store_tag(SUMMARIZER_TAG_ENV, "review-summarizer:latest") == "review-summarizer:latest"
    monkeypatch.setenv(SUMMARIZER_TAG_ENV, "review-summarizer:3")
    assert loading.store_tag(SUMMARIZER_TAG_ENV, "review-summarizer:latest") == "review-summarizer:3"


def test_resolve_an_override_directory(tmp_path, monkeypatch):
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    monkeypatch.setenv(SUMMARIZER_DIR_ENV, str(model_dir))
    with pytest.raises(RuntimeError, match="is not a Hugging Face model directory"):
        resolve_model(object(), SUMMARIZER_DIR_ENV, "summarizer_ref")
    (model_dir / "config.json").write_text("{}")
    path, info = resolve_model(object(), SUMMARIZER_DIR_ENV, "summarizer_ref")
    assert path == model_dir.resolve()
    assert (info.name, info.version, info.source) == ("my-model", "local", "dir")


def test_resolve_without_a_store_reference_names_both_variables(monkeypatch):
    monkeypatch.delenv(SENTIMENT_DIR_ENV, raising=False)
    with pytest.raises(RuntimeError, match=f"set both {SUMMARIZER_DIR_ENV} and {SENTIMENT_DIR_ENV}, or neither"):
        resolve_model(object(), SENTIMENT_DIR_ENV, "sentiment_ref")


def test_resolve_a_store_model_and_a_missing_one(monkeypatch):
    monkeypatch.delenv(SENTIMENT_DIR_ENV, raising=False)
    stored = SimpleNamespace(
        path="/store/review-sentiment/4",
        tag=SimpleNamespace(name="review-sentiment", version="4"),
        info=SimpleNamespace(labels={"mlflow_model_name": "review-sentiment", "mlflow_version": "4"}),
    )

    class Found:
        sentiment_ref = SimpleNamespace(tag="review-sentiment:latest")

        def __init__(self) -> None:
            self.sentiment_ref = stored  # what the BentoModel descriptor resolves to

    path, info = resolve_model(Found(), SENTIMENT_DIR_ENV, "sentiment_ref")
    assert str(path) == "/store/review-sentiment/4"
    assert (info.name, info.version, info.source, info.mlflow_run_id) == ("review-sentiment", "4", "bentoml", None)

    class Missing:
        sentiment_ref = SimpleNamespace(tag="review-sentiment:latest")

        def __getattribute__(self, name):
            if name == "sentiment_ref":
                raise LookupError("no such model")
            return object.__getattribute__(self, name)

    with pytest.raises(RuntimeError, match="review-sentiment:latest not found in the model store") as exc:
        resolve_model(Missing(), SENTIMENT_DIR_ENV, "sentiment_ref")
    assert "run `reviewops package`" in str(exc.value)


def test_stored_info_falls_back_to_the_tag():
    class Tag:
        name, version = "review-summarizer", "abc"

        def __str__(self) -> str:
            return "review-summarizer:abc"

    info = stored_info(SimpleNamespace(tag=Tag(), info=SimpleNamespace(labels=None)))
    assert (info.name, info.version, info.tag) == ("review-summarizer", "abc", "review-summarizer:abc")
