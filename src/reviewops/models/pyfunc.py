"""MLflow pyfunc wrappers: logged models load through :class:`Summarizer` / :class:`SentimentClassifier`.

Each wrapper reads the HF model directory from the ``model_dir`` artifact and its settings
from the ``config`` artifact (the dumped pydantic section), so ``mlflow.pyfunc.load_model(uri)``
predicts exactly like the library does. Input: a DataFrame with a ``text`` column (or a list
of strings); output: a DataFrame.

A logged model carries what it needs to load elsewhere: the ``reviewops`` package itself as
``code_paths`` (MLflow puts it on ``sys.path`` when loading), and pip requirements that pip can
install: public versions only, so a local build tag such as torch's ``2.13.0+cpu`` is logged as
``torch==2.13.0``.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.pyfunc import PythonModel  # by name: type checkers see mlflow.pyfunc as a lazy loader
from pydantic import BaseModel

from reviewops.config import SentimentConfig, SummarizerConfig
from reviewops.schema import LABELS

PROBA_COLUMNS = [f"proba_{label}" for label in LABELS]


def _texts(model_input: Any) -> list[str]:
    if isinstance(model_input, pd.DataFrame):
        column = "text" if "text" in model_input.columns else model_input.columns[0]
        return [str(t) for t in model_input[column].tolist()]
    if isinstance(model_input, pd.Series):
        return [str(t) for t in model_input.tolist()]
    if isinstance(model_input, str):
        return [model_input]
    return [str(t) for t in model_input]


def _read_config(context: Any) -> dict[str, Any]:
    path = context.artifacts.get("config")
    return json.loads(Path(path).read_text(encoding="utf-8")) if path else {}


def _log(
    name: str, python_model: Any, model_dir: str, cfg: BaseModel, example_in: pd.DataFrame, example_out: pd.DataFrame
) -> Any:
    from mlflow.models import infer_signature

    # The settings section travels as a JSON artifact, not ``model_config=``: MLflow would also
    # log that dict as run params, which clash between the two models logged in one run.
    with tempfile.TemporaryDirectory(prefix="reviewops-pyfunc-") as tmp, warnings.catch_warnings():
        # predict() is untyped on purpose (the signature comes from the example); hush the nag.
        warnings.filterwarnings("ignore", message=".*type hint.*", category=UserWarning)
        config_path = Path(tmp) / "reviewops_config.json"
        config_path.write_text(cfg.model_dump_json(indent=2), encoding="utf-8")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=python_model,
            artifacts={"model_dir": str(model_dir), "config": str(config_path)},
            signature=infer_signature(example_in, example_out),
            input_example=example_in,
            pip_requirements=requirements(),
            code_paths=[str(package_dir())],
        )


class SummarizerPyfunc(PythonModel):
    """``predict(DataFrame[text]) -> DataFrame[summary]``."""

    def load_context(self, context: Any) -> None:
        from reviewops.models.summarizer import Summarizer

        cfg = SummarizerConfig.model_validate(_read_config(context))
        self.summarizer = Summarizer.load(context.artifacts["model_dir"], cfg)

    def predict(self, context, model_input, params=None):  # untyped on purpose: MLflow reads hints
        return pd.DataFrame({"summary": self.summarizer.summarize(_texts(model_input))})


class SentimentPyfunc(PythonModel):
    """``predict(DataFrame[text]) -> DataFrame[label, proba_negative, proba_neutral, proba_positive]``."""

    def load_context(self, context: Any) -> None:
        from reviewops.models.sentiment import SentimentClassifier

        cfg = SentimentConfig.model_validate(_read_config(context))
        self.classifier = SentimentClassifier.load(context.artifacts["model_dir"], cfg)

    def predict(self, context, model_input, params=None):  # untyped on purpose: MLflow reads hints
        proba = self.classifier.predict_proba(_texts(model_input))
        frame = pd.DataFrame(proba.astype("float64"), columns=PROBA_COLUMNS)
        frame.insert(0, "label", [LABELS[i] for i in proba.argmax(axis=1)])
        return frame


# What loading a logged model imports: the models' own stack plus what ``reviewops.config`` needs.
MODEL_REQUIREMENTS = (
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "pandas",
    "numpy",
    "pydantic",
    "pyyaml",
    "mlflow",
)


def package_dir() -> Path:
    """The ``reviewops`` package folder, logged with each model as its code."""
    import reviewops

    return Path(reviewops.__file__).resolve().parent


def requirements() -> list[str]:
    """``name==version`` for :data:`MODEL_REQUIREMENTS`, public versions only (no ``+cpu`` local tags)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in MODEL_REQUIREMENTS:
        try:
            public = version(dist).split("+", 1)[0]
        except PackageNotFoundError:  # pragma: no cover - all are installed with reviewops
            reqs.append(dist)
            continue
        reqs.append(f"{dist}=={public}")
    return reqs


def log_summarizer(
    model_dir: str, cfg: SummarizerConfig, name: str = "summarizer", example: list[str] | None = None
) -> Any:
    """Log a summarizer directory as a pyfunc model in the active run; returns ``ModelInfo``."""
    example_in = pd.DataFrame({"text": example or ["Great coffee, smooth and rich. Will buy again."]})
    example_out = pd.DataFrame({"summary": ["great coffee"] * len(example_in)})
    return _log(name, SummarizerPyfunc(), model_dir, cfg, example_in, example_out)


def log_sentiment(
    model_dir: str, cfg: SentimentConfig, name: str = "sentiment", example: list[str] | None = None
) -> Any:
    """Log a sentiment classifier directory as a pyfunc model in the active run; returns ``ModelInfo``."""
    example_in = pd.DataFrame({"text": example or ["Great coffee, smooth and rich. Will buy again."]})
    example_out = pd.DataFrame(
        {"label": ["positive"] * len(example_in), **{c: [1 / 3] * len(example_in) for c in PROBA_COLUMNS}}
    )
    return _log(name, SentimentPyfunc(), model_dir, cfg, example_in, example_out)
