"""Model folders into prediction callables for evaluation, with one-line errors for bad folders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.evaluation.behaviour import Predict


def _load_error(path: Path | str, what: str, exc: Exception) -> ReviewOpsError:
    """One line for a model directory that exists but does not load (corrupt or incomplete).

    A truncated safetensors file is named as such: the library only says "incomplete metadata".
    """
    from reviewops.training.checkpoints import safetensors_problem

    folder = Path(path)
    problems = [p for f in sorted(folder.glob("*.safetensors")) if (p := safetensors_problem(f))]
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = problems[0] if problems else (lines[0][:300] if lines else type(exc).__name__)
    return ReviewOpsError(
        f"{what} model directory {folder} could not be loaded: {reason} "
        "(re-run `reviewops train`, or pass the path of an intact model)"
    )


def _load_model(cls: Any, path: Path | str, section: Any, what: str) -> Any:
    """``cls.load(path, section)``, any failure but our own turned into one line naming the folder."""
    try:
        return cls.load(path, section)
    except ReviewOpsError:
        raise
    except Exception as exc:  # noqa: BLE001 - transformers/safetensors/json raise many types for a bad folder
        raise _load_error(path, what, exc) from exc


def load_summarizer(path: Path | str, settings: Settings, what: str = "summarizer") -> Predict:
    """A summarizer folder as ``texts -> summaries`` (batched by ``evaluate.batch_size``).

    Raises:
        ReviewOpsError: the folder does not load; the message names it and ``what``.
    """
    from reviewops.models.summarizer import Summarizer

    model = _load_model(Summarizer, path, settings.summarizer, what)
    bs = settings.evaluate.batch_size
    return lambda texts: model.summarize(list(texts), batch_size=bs)


def load_classifier(path: Path | str, settings: Settings, what: str = "sentiment") -> Predict:
    """A sentiment folder as ``texts -> labels``.

    Raises:
        ReviewOpsError: the folder does not load; the message names it and ``what``.
    """
    from reviewops.models.sentiment import SentimentClassifier

    model = _load_model(SentimentClassifier, path, settings.sentiment, what)
    return lambda texts: list(model.predict(list(texts)))


def require_model_dir(path: Path | str, what: str) -> None:
    """Fail with the command that creates the folder when a trained model's folder is missing."""
    p = Path(path)
    if not p.is_dir():
        raise ReviewOpsError(
            f"{what} model directory {p} does not exist; run `reviewops train` first "
            "(or pass the path of a trained model)"
        )


@dataclass
class Predictors:
    """The callables one evaluation scores; None where a model is not scored."""

    summarize: Predict | None = None
    classify: Predict | None = None
    base_summarize: Predict | None = None
    champion_summarize: Predict | None = None
    champion_classify: Predict | None = None
    # The untuned summarizer's folder as resolved (it may come from ``summarizer.model``).
    base_summarizer_path: Path | str | None = None
    notes: list[str] = field(default_factory=list)


def _load_base(settings: Settings, base_summarizer_path: Path | str | None, out: Predictors) -> None:
    """The untuned baseline: the given folder, else ``summarizer.model`` if installed, else a note."""
    if base_summarizer_path is None:
        from reviewops.models.pretrained import resolve_model_path

        try:
            base_summarizer_path = resolve_model_path(settings.summarizer.model, settings)
        except ReviewOpsError as exc:
            out.notes.append(f"untuned baseline skipped: {exc}")
    if base_summarizer_path is not None:
        out.base_summarize = load_summarizer(base_summarizer_path, settings, "untuned (baseline) summarizer")
        out.base_summarizer_path = base_summarizer_path


def load_predictors(
    settings: Settings,
    summarizer_path: Path | str | None,
    sentiment_path: Path | str | None,
    base_summarizer_path: Path | str | None = None,
    champion_summarizer_path: Path | str | None = None,
    champion_sentiment_path: Path | str | None = None,
) -> Predictors:
    """Load the candidates, the untuned baseline (when ``evaluate.untuned_baseline``) and the champions.

    A champion is loaded only when its candidate is; a missing untuned base model is a note,
    not an error (``meta.notes`` of the result says the baseline was skipped).

    Raises:
        ReviewOpsError: a candidate folder is missing, or any folder does not load.
    """
    out = Predictors()
    if summarizer_path is not None:
        require_model_dir(summarizer_path, "summarizer")
        out.summarize = load_summarizer(summarizer_path, settings)
    if sentiment_path is not None:
        require_model_dir(sentiment_path, "sentiment")
        out.classify = load_classifier(sentiment_path, settings)
    if out.summarize is not None and settings.evaluate.untuned_baseline:
        _load_base(settings, base_summarizer_path, out)
    if champion_summarizer_path is not None and out.summarize is not None:
        out.champion_summarize = load_summarizer(champion_summarizer_path, settings, "champion summarizer")
    if champion_sentiment_path is not None and out.classify is not None:
        out.champion_classify = load_classifier(champion_sentiment_path, settings, "champion sentiment")
    return out
