"""The ``evaluate`` stage: score the candidates, baselines and champion on the test split.

:func:`run_evaluate` reads ``test.parquet`` and the training report, downloads the registry
champions for a like-for-like re-score, loads every model folder
(:mod:`reviewops.evaluation.loading`), builds the scorecard
(:func:`reviewops.evaluation.scorecard.evaluate_predictors`), writes it as JSON and logs it to
MLflow. The scores themselves live in :mod:`~reviewops.evaluation.metrics`,
:mod:`~reviewops.evaluation.baselines` and :mod:`~reviewops.evaluation.behaviour`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.evaluation.loading import load_predictors
from reviewops.evaluation.scorecard import evaluate_predictors, json_safe, metrics_of, write_result

# --------------------------------------------------------------------------- progress


class PhaseLog:
    """Progress lines of one evaluation: ``evaluate: <phase>...`` as each phase starts, then the timings.

    Evaluation runs for about a minute on CPU (generation dominates): these lines say what it
    is doing and, at the end, how long each phase took.
    """

    def __init__(self, log: Callable[[str], None], clock: Callable[[], float] = time.perf_counter) -> None:
        self._log, self._clock = log, clock
        self._start = self._phase_start = clock()
        self._phase: str | None = None
        self.timings: dict[str, float] = {}

    def __call__(self, phase: str) -> None:
        """Close the running phase and start ``phase``."""
        self._close()
        self._phase, self._phase_start = phase, self._clock()
        self._log(f"evaluate: {phase}...")

    def note(self, message: str) -> None:
        """A line inside the running phase (its time still counts for that phase)."""
        self._log(f"evaluate: {message}")

    def _close(self) -> None:
        if self._phase is not None:
            self.timings[self._phase] = round(self._clock() - self._phase_start, 1)
            self._phase = None

    def done(self) -> None:
        """Close the last phase and log the total with every phase's seconds."""
        self._close()
        total = round(self._clock() - self._start, 1)
        phases = ", ".join(f"{name} {seconds:g} s" for name, seconds in self.timings.items())
        self._log(f"evaluate: done in {total:g} s ({phases})")


def _models_line(test_rows: int, p: Any) -> str:
    """``375 test rows; models: fine-tuned, untuned base, champion (re-scored)``."""
    models = ["fine-tuned"]
    models += ["untuned base"] if p.base_summarize is not None else []
    models += ["champion (re-scored)"] if p.champion_summarize is not None or p.champion_classify is not None else []
    return f"{test_rows} test rows; models: {', '.join(models)}"


# --------------------------------------------------------------------------- scoring model folders


def evaluate_models(
    settings: Settings,
    test_df: pd.DataFrame,
    summarizer_path: Path | str | None,
    sentiment_path: Path | str | None,
    base_summarizer_path: Path | str | None = None,
    out_json: Path | None = None,
    champion_summarizer_path: Path | str | None = None,
    champion_sentiment_path: Path | str | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Load the trained models (and baselines) and evaluate them on ``test_df``.

    When ``base_summarizer_path`` is None and ``evaluate.untuned_baseline`` is on, the base
    model named by ``summarizer.model`` is resolved with
    :func:`reviewops.models.pretrained.resolve_model_path`; if it is not installed the
    baseline is skipped and ``meta.notes`` says so. See :func:`evaluate_predictors` for the
    result layout and sampling.
    """
    log("loading models")
    p = load_predictors(
        settings,
        summarizer_path,
        sentiment_path,
        base_summarizer_path,
        champion_summarizer_path,
        champion_sentiment_path,
    )
    # Inside run_evaluate, log is a PhaseLog: this line belongs to the loading phase.
    getattr(log, "note", log)(_models_line(len(test_df), p))
    result = evaluate_predictors(
        settings,
        test_df,
        p.summarize,
        p.classify,
        p.base_summarize,
        p.champion_summarize,
        p.champion_classify,
        out_json=None,
        notes=p.notes,
        log=log,
    )
    result["meta"]["models"] = {
        "summarizer": str(summarizer_path) if summarizer_path else None,
        "sentiment": str(sentiment_path) if sentiment_path else None,
        "untuned_summarizer": str(p.base_summarizer_path) if p.base_summarize is not None else None,
        "champion_summarizer": str(champion_summarizer_path) if p.champion_summarize is not None else None,
        "champion_sentiment": str(champion_sentiment_path) if p.champion_classify is not None else None,
    }
    if out_json is not None:
        write_result(result, out_json)
    return result


# --------------------------------------------------------------------------- MLflow


_MLFLOW_BAD = re.compile(r"[^/\w.\- ]")


def mlflow_metric_name(key: str) -> str:
    """MLflow forbids ``=`` in metric names: ``slice/language=zh/rougeL`` -> ``slice/language_zh/rougeL``."""
    return _MLFLOW_BAD.sub("_", key)


def log_to_mlflow(result: dict[str, Any], run_id: str | None = None, json_name: str = "eval/eval.json") -> str:
    """Log an evaluation result to MLflow and return the run id.

    Logs every metric (names through :func:`mlflow_metric_name`), the predictions as an
    MLflow table (``eval/predictions.json``) and the whole result as ``eval/eval.json``.
    Uses ``run_id`` when given (e.g. the training run), the active run, or starts a new run
    named ``evaluate``. Call :func:`reviewops.registry.tracking.configure_mlflow` first.
    """
    import mlflow

    from reviewops.registry.tracking import use_run

    with use_run(run_id, run_name="evaluate") as rid:
        metrics = {mlflow_metric_name(k): v for k, v in metrics_of(result).items()}
        mlflow.log_metrics(metrics, run_id=rid)
        if result.get("predictions"):
            mlflow.log_table(pd.DataFrame(result["predictions"]), artifact_file="eval/predictions.json", run_id=rid)
        mlflow.log_dict(json_safe(result), json_name, run_id=rid)
        meta = result.get("meta", {})
        client = mlflow.MlflowClient()
        client.set_tag(rid, "eval.test_fingerprint", str(meta.get("test_fingerprint")))
        client.set_tag(rid, "eval.summarization_rows", str(meta.get("summarization_rows")))
    return rid


# --------------------------------------------------------------------------- the pipeline stage


def read_train_report(path: Path | str) -> dict[str, Any]:
    """Read ``reports/train.json`` and normalise it to ``summarizer_uri``, ``sentiment_uri``,
    ``run_id`` and ``model_dirs`` ({"summarizer": dir, "sentiment": dir}).

    Accepts the flat keys or the ``model_uris: {summarizer, sentiment}`` mapping that
    :func:`reviewops.training.train.run_train` returns.

    Raises:
        ReviewOpsError: the file is missing or not JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise ReviewOpsError(f"{path} not found; run `reviewops train` first (it writes the model URIs there)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReviewOpsError(f"{path}: not valid JSON ({exc})") from None
    uris = data.get("model_uris") or {}
    out = dict(data)
    out["summarizer_uri"] = data.get("summarizer_uri") or uris.get("summarizer")
    out["sentiment_uri"] = data.get("sentiment_uri") or uris.get("sentiment")
    out["run_id"] = data.get("run_id")
    out["model_dirs"] = data.get("model_dirs") or {}
    return out


def _champion_dirs(settings: Settings, log: Callable[[str], None]) -> tuple[Path | None, Path | None, list[str]]:
    """Download the registry champions (if any) so they can be re-scored on the same rows.

    A champion that cannot be downloaded is a note in the result, not a failed evaluation.
    """
    from reviewops.registry import registry

    notes: list[str] = []
    dirs: list[Path | None] = []
    for name in (settings.gate.summarizer_name, settings.gate.sentiment_name):
        try:
            folder = registry.champion_dir(name)
        except ReviewOpsError as exc:
            notes.append(f"champion {name} not re-scored: {exc}")
            folder = None
        if folder is not None:
            log(f"downloaded {name}@champion")
        dirs.append(folder)
    return dirs[0], dirs[1], notes


def _read_test_split(test_path: Path) -> pd.DataFrame:
    if not test_path.is_file():
        raise ReviewOpsError(f"{test_path} not found; run the data stages first (`make run`, or `dvc repro split`)")
    return pd.read_parquet(test_path)


def _candidate_dirs(
    settings: Settings, report: dict[str, Any], summarizer_path: Path | str | None, sentiment_path: Path | str | None
) -> tuple[Path | str, Path | str]:
    """The folders to score: given ones, else those in the training report, else ``models/trained/*``."""
    trained = Path(settings.paths.models_dir) / "trained"
    dirs = report["model_dirs"]
    return (
        summarizer_path or dirs.get("summarizer") or trained / "summarizer",
        sentiment_path or dirs.get("sentiment") or trained / "sentiment",
    )


def run_evaluate(
    settings: Settings,
    *,
    processed_dir: Path | str | None = None,
    summarizer_path: Path | str | None = None,
    sentiment_path: Path | str | None = None,
    base_summarizer_path: Path | str | None = None,
    out_json: Path | str | None = None,
    train_report: Path | str | None = None,
    log_mlflow: bool = True,
    compare_champion: bool | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The ``evaluate`` stage: read ``test.parquet``, evaluate, write JSON, log to MLflow.

    Defaults: ``paths.processed_dir``, the model dirs named in the training report (else
    ``<paths.models_dir>/trained/{summarizer,sentiment}``), ``<paths.reports_dir>/eval.json``
    and ``<paths.reports_dir>/train.json``. Metrics are logged to the training run named in
    the report when it exists, else to a new ``evaluate`` run. With
    ``evaluate.compare_champion`` (or ``compare_champion``) the registry champions are
    re-scored on the same rows.

    Raises:
        ReviewOpsError: the test split or a model folder is missing or unreadable.
    """
    phases = PhaseLog(log)
    reports = Path(settings.paths.reports_dir)
    test_path = Path(processed_dir or settings.paths.processed_dir) / "test.parquet"
    test_df = _read_test_split(test_path)
    report_path = Path(train_report or reports / "train.json")
    report = read_train_report(report_path) if report_path.is_file() else {"model_dirs": {}, "run_id": None}
    summarizer_dir, sentiment_dir = _candidate_dirs(settings, report, summarizer_path, sentiment_path)
    compare = settings.evaluate.compare_champion if compare_champion is None else compare_champion
    if log_mlflow or compare:
        from reviewops.registry.tracking import configure_mlflow

        configure_mlflow(settings)
    if compare:
        phases("downloading the registry champions")
    champ_s, champ_c, notes = _champion_dirs(settings, phases.note) if compare else (None, None, [])
    out = Path(out_json or reports / "eval.json")
    result = evaluate_models(
        settings,
        test_df,
        summarizer_dir,
        sentiment_dir,
        base_summarizer_path,
        champion_summarizer_path=champ_s,
        champion_sentiment_path=champ_c,
        log=phases,
    )
    result["meta"]["notes"].extend(notes)
    result["meta"]["test_path"] = str(test_path)
    if log_mlflow:
        phases("logging to MLflow")
        result["meta"]["mlflow_run_id"] = log_to_mlflow(result, run_id=report.get("run_id"))
    write_result(result, out)
    phases.done()
    result["meta"]["out"] = str(out)
    return result
