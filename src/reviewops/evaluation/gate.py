"""Quality gate: absolute floors and ceilings on the candidate, and no regression against the champion.

:func:`decide` is pure (numbers in, decision out; it lives in
:mod:`reviewops.evaluation.gate_decision` and is re-exported here). :func:`decide_and_register` is the
pipeline step: it finds the champion's numbers, decides, logs every number and the decision
to MLflow, and only on a pass touches the registry (register both models, alias ``challenger``,
promote to ``champion`` when ``gate.auto_promote``). A failed gate raises
:class:`GateFailedError` with the failed checks as a table, leaving the registry unchanged.
:func:`run_gate` is the stage from files (``reports/eval.json`` -> ``reports/gate.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reviewops.config import GateConfig, Settings
from reviewops.errors import ReviewOpsError
from reviewops.evaluation.gate_decision import (
    CEILING_DEFAULTS,
    CEILING_METRICS,
    CONTRADICTION_KEY,
    F1_KEY,
    FINGERPRINT_KEY,
    GATED_METRICS,
    ROUGE_KEY,
    GateCheck,
    GateDecision,
    GateFailedError,
    decide,
    metric_value,
    threshold_of,
)
from reviewops.reports import write_json

GATE_TAG = "reviewops.gate"  # "passed" | "rejected", on the gate run and the candidate's training run

__all__ = [
    "CEILING_DEFAULTS",
    "CEILING_METRICS",
    "CONTRADICTION_KEY",
    "F1_KEY",
    "FINGERPRINT_KEY",
    "GATED_METRICS",
    "ROUGE_KEY",
    "GateCheck",
    "GateDecision",
    "GateFailedError",
    "candidate_metrics",
    "champion_from_eval",
    "champion_from_registry",
    "decide",
    "decide_and_register",
    "run_gate",
    "threshold_of",
    "verdict_line",
]


def candidate_metrics(eval_result: dict[str, Any]) -> dict[str, Any]:
    """The gate's view of an evaluation result: ``eval/*`` metrics plus the test fingerprint."""
    out = {k: v for k, v in eval_result.items() if k.startswith("eval/")}
    fingerprint = (eval_result.get("meta") or {}).get("test_fingerprint")
    if fingerprint:
        out[FINGERPRINT_KEY] = fingerprint
    return out


def champion_from_eval(eval_result: dict[str, Any]) -> dict[str, Any] | None:
    """Champion metrics re-scored on the same rows by ``evaluate`` (``champion/eval/*``), if any."""
    found = {k.removeprefix("champion/"): v for k, v in eval_result.items() if k.startswith("champion/eval/")}
    if not found:
        return None
    fingerprint = (eval_result.get("meta") or {}).get("test_fingerprint")
    if fingerprint:
        found[FINGERPRINT_KEY] = fingerprint
    found["source"] = "re-scored on the same test rows"
    return found


def champion_from_registry(cfg: GateConfig) -> dict[str, Any] | None:
    """Champion numbers as recorded in the registry: rougeL from the summarizer's champion,
    macro-F1 from the sentiment model's champion. None when neither has a champion."""
    from reviewops.registry.registry import champion_metrics

    merged: dict[str, Any] = {}
    for key, _floor, model in GATED_METRICS:
        name = cfg.summarizer_name if model == "summarizer" else cfg.sentiment_name
        metrics = champion_metrics(name)
        if metrics is None:
            continue
        if key in metrics:
            merged[key] = metrics[key]
        merged[f"{model}_version"] = metrics.get("version")
        if FINGERPRINT_KEY in metrics:
            merged[FINGERPRINT_KEY] = metrics[FINGERPRINT_KEY]
    if not merged:
        return None
    merged["source"] = "registry"
    return merged


def _require_uris(model_uris: dict[str, Any]) -> None:
    missing = [k for k in ("summarizer_uri", "sentiment_uri") if not model_uris.get(k)]
    if missing:
        raise ReviewOpsError(
            f"the training report lacks {missing}; re-run `reviewops train` (it writes reports/train.json)"
        )


def _judge(
    settings: Settings, eval_result: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None, GateDecision]:
    """(candidate metrics, champion metrics, decision): the champion re-scored by evaluate, else the registry's."""
    candidate = candidate_metrics(eval_result)
    champion = champion_from_eval(eval_result) if settings.evaluate.compare_champion else None
    if champion is None:
        champion = champion_from_registry(settings.gate)
    return candidate, champion, decide(candidate, champion, settings.gate)


def _gate_params(cfg: GateConfig, model_uris: dict[str, Any], champion: dict[str, Any] | None) -> dict[str, Any]:
    """The gate run's params: thresholds, the candidates' URIs and where the champion's numbers came from."""
    return {
        "gate.min_rougeL": cfg.min_rougeL,
        "gate.min_macro_f1": cfg.min_macro_f1,
        "gate.max_regression": cfg.max_regression,
        "gate.max_contradiction_rate": str(threshold_of(cfg, "max_contradiction_rate")),
        "gate.auto_promote": cfg.auto_promote,
        "summarizer_uri": model_uris["summarizer_uri"],
        "sentiment_uri": model_uris["sentiment_uri"],
        "train_run_id": model_uris.get("run_id") or "",
        "champion_source": (champion or {}).get("source", "none"),
    }


def _gate_numbers(
    candidate: dict[str, Any], champion: dict[str, Any] | None, decision: GateDecision
) -> dict[str, float]:
    """The gate run's metrics: every candidate and champion number, and each check's value and verdict."""
    from reviewops.evaluation.evaluate import mlflow_metric_name

    numbers = {f"candidate/{k}": v for k, v in candidate.items() if metric_value(candidate, k) is not None}
    numbers.update(
        {
            f"champion/{k}": v
            for k, v in (champion or {}).items()
            if k.startswith("eval/") and metric_value(champion, k) is not None
        }
    )
    for c in decision.checks:
        numbers[f"gate/{c.name}/threshold"] = c.threshold
        numbers[f"gate/{c.name}/passed"] = float(c.passed)
        if c.value is not None:
            numbers[f"gate/{c.name}/value"] = c.value
    numbers["gate/passed"] = float(decision.passed)
    return {mlflow_metric_name(k): float(v) for k, v in numbers.items()}


def decide_and_register(settings: Settings, eval_result: dict[str, Any], model_uris: dict[str, Any]) -> GateDecision:
    """Decide, log, and (on a pass) register and alias the candidate models.

    The champion's numbers come from ``champion/eval/*`` in ``eval_result`` when
    ``evaluate`` re-scored the champion on the same rows, else from the registry
    (:func:`reviewops.registry.registry.champion_metrics`). Logging goes to a new MLflow run named
    ``gate`` (a child of the training run when ``model_uris["run_id"]`` is given): params
    (thresholds, URIs), metrics (every candidate/champion number and each check),
    ``gate/decision.json``, and the verdict (:func:`verdict_line`) as its description and tag
    ``reviewops.gate`` (passed | rejected). The training run gets the same tag and a description
    that starts with "REJECTED by the quality gate" on a rejection; registered versions get the
    verdict as their description and the figures as tags rounded to 4 decimals.

    Args:
        settings: ``gate.*`` thresholds, names and ``auto_promote``.
        eval_result: the output of :func:`reviewops.evaluation.evaluate.run_evaluate`.
        model_uris: ``{"summarizer_uri", "sentiment_uri", "run_id"}`` as written by training
            to ``reports/train.json``.

    Returns:
        The decision; ``decision.registered`` holds the new versions and aliases.

    Raises:
        GateFailedError: a check failed (after logging; the registry is untouched).
        ReviewOpsError: ``model_uris`` lacks a model URI.
    """
    import mlflow

    from reviewops.registry.tracking import configure_mlflow, process_tags

    _require_uris(model_uris)
    configure_mlflow(settings)
    candidate, champion, decision = _judge(settings, eval_result)
    train_run = model_uris.get("run_id")
    tags = process_tags(**{"reviewops.stage": "gate"})
    if train_run:
        tags["mlflow.parentRunId"] = str(train_run)
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name="gate", tags=tags, nested=nested, description=verdict_line(decision)) as run:
        mlflow.log_params(_gate_params(settings.gate, model_uris, champion))
        mlflow.log_metrics(_gate_numbers(candidate, champion, decision))
        mlflow.set_tags({"gate.decision": "passed" if decision.passed else "failed", GATE_TAG: _outcome(decision)})
        if decision.passed:
            _register_candidates(decision, candidate, model_uris, settings.gate, run.info.run_id)
        mlflow.log_dict(decision.to_dict(), "gate/decision.json")
    if train_run:
        _mark_train_run(str(train_run), decision)
    if not decision.passed:
        # Raised after the run closes so the gate run ends FINISHED with its decision logged.
        raise GateFailedError(decision)
    return decision


def _outcome(decision: GateDecision) -> str:
    return "passed" if decision.passed else "rejected"


def _check_text(check: GateCheck) -> str:
    value = "missing" if check.value is None else f"{check.value:.4f}"
    return f"{check.name} {value} (needs {check.comparison} {check.threshold:.4f})"


def verdict_line(decision: GateDecision) -> str:
    """The verdict in one line, figures to 4 decimals: every check on a pass, the failing ones on a rejection.

    It is the gate run's description and each registered version's description in the MLflow UI.
    """
    if decision.passed:
        checks = "; ".join(_check_text(c) for c in decision.checks)
        return f"Quality gate passed: all {len(decision.checks)} checks ({checks})"
    failed = decision.failed_checks
    checks = "; ".join(_check_text(c) for c in failed)
    return f"Quality gate rejected: {len(failed)} of {len(decision.checks)} checks failed ({checks})"


def _mark_train_run(run_id: str, decision: GateDecision) -> None:
    """Tag the candidate's training run with the outcome; a rejected one says so first in its description.

    The UI lists runs by name and status, so a rejected re-tune otherwise looks like any finished
    ``train`` run; its description (``mlflow.note.content``) starts with "REJECTED by the quality gate".
    """
    import mlflow

    from reviewops.registry.tracking import NOTE_TAG

    if decision.passed:
        entries = decision.registered.values()
        names = ", ".join(f"{e['name']} v{e['version']} ({', '.join(e['aliases'])})" for e in entries)
        note = f"Passed the quality gate: registered {names}."
    else:
        failed = "; ".join(_check_text(c) for c in decision.failed_checks)
        note = f"REJECTED by the quality gate: {failed}. The registry was not changed."
    client = mlflow.MlflowClient()
    client.set_tag(run_id, GATE_TAG, _outcome(decision))
    client.set_tag(run_id, NOTE_TAG, note)


def _register_candidates(
    decision: GateDecision, candidate: dict[str, Any], model_uris: dict[str, Any], cfg: GateConfig, gate_run: str
) -> None:
    """Register both models, alias them ``challenger``, and promote when ``auto_promote``."""
    from reviewops.registry import registry

    version_tags = registry.metric_tags(candidate)  # rounded to 4 decimals for the UI
    version_tags.update({"gate_run_id": gate_run, "train_run_id": model_uris.get("run_id") or ""})
    for model, uri_key, name in (
        ("summarizer", "summarizer_uri", cfg.summarizer_name),
        ("sentiment", "sentiment_uri", cfg.sentiment_name),
    ):
        version = registry.register(str(model_uris[uri_key]), name, version_tags)
        registry.describe_version(name, version, verdict_line(decision))
        registry.set_alias(name, registry.CHALLENGER, version)
        entry: dict[str, Any] = {"name": name, "version": version, "aliases": [registry.CHALLENGER], "promoted": False}
        if cfg.auto_promote:
            promoted = registry.promote(name, version)
            entry["aliases"] = [registry.CHAMPION]
            entry["promoted"] = True
            entry["previous_champion"] = promoted["previous_champion"]
        decision.registered[model] = entry


def run_gate(
    settings: Settings,
    *,
    eval_json: Path | str | None = None,
    train_report: Path | str | None = None,
    out_json: Path | str | None = None,
) -> GateDecision:
    """The ``gate`` stage from files: ``reports/eval.json`` + ``reports/train.json`` -> ``reports/gate.json``.

    The decision file is written whether the gate passes or fails.

    Raises:
        GateFailedError: as :func:`decide_and_register`.
        ReviewOpsError: an input file is missing.
    """
    from reviewops.evaluation.evaluate import read_train_report

    reports = Path(settings.paths.reports_dir)
    eval_path = Path(eval_json or reports / "eval.json")
    if not eval_path.is_file():
        raise ReviewOpsError(f"{eval_path} not found; run `reviewops evaluate` first")
    eval_result = json.loads(eval_path.read_text(encoding="utf-8"))
    uris = read_train_report(train_report or reports / "train.json")
    out = Path(out_json or reports / "gate.json")
    try:
        decision = decide_and_register(settings, eval_result, uris)
    except GateFailedError as exc:
        write_json(out, exc.decision.to_dict())
        raise
    write_json(out, decision.to_dict())
    return decision
