"""Where the models service finds its models: the BentoML model store, or local Hugging Face directories.

Model source: BentoML models ``serve.summarizer_tag`` / ``serve.sentiment_tag``
(``review-summarizer:latest``…, created by ``reviewops package`` from the MLflow champions;
``REVIEWOPS_SUMMARIZER_TAG`` / ``REVIEWOPS_SENTIMENT_TAG`` override), or plain local
Hugging Face directories from ``REVIEWOPS_SUMMARIZER_DIR`` / ``REVIEWOPS_SENTIMENT_DIR``.
Each model is loaded with the settings section it was logged with (``reviewops_config.json``
beside the weights), else with the served settings.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reviewops.config import SentimentConfig, Settings, SummarizerConfig
from reviewops.serving.errors import one_line
from reviewops.serving.schemas import ModelInfo

logger = logging.getLogger(__name__)

SUMMARIZER_DIR_ENV = "REVIEWOPS_SUMMARIZER_DIR"
SENTIMENT_DIR_ENV = "REVIEWOPS_SENTIMENT_DIR"
SUMMARIZER_TAG_ENV = "REVIEWOPS_SUMMARIZER_TAG"
SENTIMENT_TAG_ENV = "REVIEWOPS_SENTIMENT_TAG"
# Written by `reviewops package` next to the HF files: the settings section the model was logged with.
CONFIG_FILE = "reviewops_config.json"


def override_dirs_set() -> bool:
    """Whether both local model directories are given (then the model store is not used at all)."""
    return bool(os.environ.get(SUMMARIZER_DIR_ENV) and os.environ.get(SENTIMENT_DIR_ENV))


def store_tag(env: str, default: str) -> str:
    """The BentoML model tag to serve: ``$env`` when set, else ``default`` (``serve.*_tag``)."""
    return os.environ.get(env) or default


def read_section(directory: Path, cls: type[BaseModel], fallback: BaseModel) -> Any:
    """The settings section stored beside the model by `reviewops package`, else ``fallback``."""
    path = directory / CONFIG_FILE
    if path.is_file():
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except Exception as exc:  # an old/foreign config must not stop serving
            logger.warning("ignoring %s (%s); using params.yaml settings", path, exc)
    return fallback


def stored_info(stored: Any) -> ModelInfo:
    """The :class:`ModelInfo` of a BentoML store model (its labels name the MLflow model it came from)."""
    labels = dict(stored.info.labels or {})
    return ModelInfo(
        name=labels.get("mlflow_model_name", stored.tag.name),
        version=labels.get("mlflow_version", str(stored.tag.version)),
        source="bentoml",
        tag=str(stored.tag),
        mlflow_run_id=labels.get("mlflow_run_id"),
    )


def resolve_model(service: Any, env: str, ref_attr: str) -> tuple[Path, ModelInfo]:
    """The directory and :class:`ModelInfo` of one model: ``$env`` when set, else the service's store model.

    Args:
        service: the models service instance; its class holds the ``bentoml.models.BentoModel``
            reference ``ref_attr`` unless override directories are set.
        env: the override-directory variable (``REVIEWOPS_SUMMARIZER_DIR``/``..._SENTIMENT_DIR``).
        ref_attr: the class attribute of the store reference (``summarizer_ref``/``sentiment_ref``).

    Raises:
        RuntimeError: naming what to set or run (the load-failure cause /readyz shows).
    """
    override = os.environ.get(env)
    if override:
        path = Path(override).expanduser().resolve()
        if not (path / "config.json").is_file():
            raise RuntimeError(f"{env}={override} is not a Hugging Face model directory (no config.json)")
        return path, ModelInfo(name=path.name, version="local", source="dir")
    ref = getattr(type(service), ref_attr, None)
    if ref is None:
        raise RuntimeError(f"set both {SUMMARIZER_DIR_ENV} and {SENTIMENT_DIR_ENV}, or neither")
    try:
        stored = getattr(service, ref_attr)  # BentoModel descriptor: resolves in the model store
    except Exception as exc:
        raise RuntimeError(
            f"BentoML model {ref.tag} not found in the model store ({exc}); run "
            f"`reviewops package` or set {SUMMARIZER_DIR_ENV}/{SENTIMENT_DIR_ENV}"
        ) from None
    return Path(stored.path), stored_info(stored)


@dataclass(frozen=True)
class LoadedModels:
    """Both models and where they came from. Read-only once loaded: shared by every serving thread."""

    summarizer: Any
    classifier: Any
    summarizer_info: ModelInfo
    sentiment_info: ModelInfo


def load_models(service: Any, settings: Settings) -> LoadedModels:
    """Resolve and load the summarizer and the sentiment classifier of ``service``.

    Raises:
        RuntimeError: a model cannot be found or loaded; the message names which one.
    """
    from reviewops.models.onnx_sentiment import runtime_classifier
    from reviewops.models.sentiment import SentimentClassifier
    from reviewops.models.summarizer import Summarizer

    sum_dir, summarizer_info = resolve_model(service, SUMMARIZER_DIR_ENV, "summarizer_ref")
    sent_dir, sentiment_info = resolve_model(service, SENTIMENT_DIR_ENV, "sentiment_ref")
    sum_cfg = read_section(sum_dir, SummarizerConfig, settings.summarizer)
    sent_cfg = read_section(sent_dir, SentimentConfig, settings.sentiment)
    logger.info("loading summarizer %s and sentiment %s", sum_dir, sent_dir)
    # The cause names the model: an orchestrator's event shows which file to fix.
    try:
        summarizer = Summarizer.load(sum_dir, sum_cfg)
    except Exception as exc:
        raise RuntimeError(f"summarizer {sum_dir}: {one_line(exc)}") from exc
    try:
        # runtime and inference: the deployment's choice, not the packaged section's (no repackaging)
        classifier = runtime_classifier(SentimentClassifier.load(sent_dir, sent_cfg), settings)
    except Exception as exc:
        raise RuntimeError(f"sentiment model {sent_dir}: {one_line(exc)}") from exc
    return LoadedModels(summarizer, classifier, summarizer_info, sentiment_info)
