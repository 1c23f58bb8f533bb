"""Quality gate: absolute floors on the candidate, and no regression against the champion.

:func:`decide` is pure (numbers in, decision out). :func:`decide_and_register` is the
pipeline step: it finds the champion's numbers, decides, logs every number and the decision
to MLflow, and only on a pass touches the registry (register both models, alias ``challenger``,
promote to ``champion`` when ``gate.auto_promote``). A failed gate raises
:class:`GateFailedError` with the failed checks as a table, leaving the registry unchanged.
:func:`run_gate` is the stage from files (``reports/eval.json`` -> ``reports/gate.json``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reviewops.config import GateConfig, Settings
from reviewops.errors import ReviewOpsError
from reviewops.reports import write_json

ROUGE_KEY = "eval/rougeL"
F1_KEY = "eval/sentiment_macro_f1"
# (metric key, floor attribute on GateConfig, model it belongs to)
GATED_METRICS = ((ROUGE_KEY, "min_rougeL", "summarizer"), (F1_KEY, "min_macro_f1", "sentiment"))
FINGERPRINT_KEY = "eval/test_fingerprint"


@dataclass(frozen=True)
class GateCheck:
    """One row of the gate: a number, the threshold it had to reach, and the verdict."""

    name: str
    value: float | None
    threshold: float
    passed: bool
    detail: str = ""


@dataclass
class GateDecision:
    """The gate's verdict with every check behind it."""

    checks: list[GateCheck]
    champion: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    registered: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed_checks(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]

    def table(self, only_failed: bool = False) -> list[list[str]]:
        """Rows ``[check, value, threshold, result, detail]`` with a header row first.

        Strings only, so the same rows feed a Rich table or :meth:`to_text`.
        """
        rows = [["check", "value", "threshold", "result", "detail"]]
        for c in self.failed_checks if only_failed else self.checks:
            value = "missing" if c.value is None else f"{c.value:.4f}"
            rows.append([c.name, value, f">= {c.threshold:.4f}", "PASS" if c.passed else "FAIL", c.detail])
        return rows

    def to_text(self, only_failed: bool = False) -> str:
        """The table as aligned plain text."""
        rows = self.table(only_failed)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def rich_table(self, title: str | None = None):
        """The table as a :class:`rich.table.Table` (FAIL rows in red)."""
        from rich.table import Table

        header, *rows = self.table()
        t = Table(title=title or f"quality gate: {'PASSED' if self.passed else 'FAILED'}", title_justify="left")
        for h in header:
            t.add_column(h)
        for r in rows:
            t.add_row(*r, style=None if r[3] == "PASS" else "red")
        return t

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [asdict(c) for c in self.checks],
            "champion": self.champion,
            "notes": self.notes,
            "registered": self.registered,
        }


class GateFailedError(ReviewOpsError):
    """The candidate did not pass the gate; the message is the table of failed checks."""

    def __init__(self, decision: GateDecision) -> None:
        self.decision = decision
        super().__init__("quality gate failed; the registry was not changed.\n" + decision.to_text(only_failed=True))


def _number(metrics: dict[str, Any] | None, key: str) -> float | None:
    if not metrics or metrics.get(key) is None:
        return None
    try:
        value = float(metrics[key])
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _floor_checks(candidate: dict[str, Any], cfg: GateConfig) -> list[GateCheck]:
    """``floor/<metric>``: each gated metric against its absolute floor (missing fails)."""
    checks = []
    for key, floor_attr, _model in GATED_METRICS:
        value, floor = _number(candidate, key), float(getattr(cfg, floor_attr))
        checks.append(
            GateCheck(
                f"floor/{key.removeprefix('eval/')}",
                value,
                floor,
                value is not None and value >= floor,
                f"gate.{floor_attr}" if value is not None else f"{key} missing from evaluation",
            )
        )
    return checks


def _regression_checks(
    candidate: dict[str, Any], champion: dict[str, Any], cfg: GateConfig, notes: list[str]
) -> list[GateCheck]:
    """``regression/<metric>``: no more than ``gate.max_regression`` below the champion's number."""
    checks = []
    for key, _floor_attr, _model in GATED_METRICS:
        ref = _number(champion, key)
        if ref is None:
            notes.append(f"champion has no {key}: regression check skipped")
            continue
        value, threshold = _number(candidate, key), ref - cfg.max_regression
        checks.append(
            GateCheck(
                f"regression/{key.removeprefix('eval/')}",
                value,
                threshold,
                value is not None and value >= threshold,
                f"champion {ref:.4f} - gate.max_regression {cfg.max_regression}",
            )
        )
    return checks


def decide(candidate: dict[str, Any], champion: dict[str, Any] | None, cfg: GateConfig) -> GateDecision:
    """Judge a candidate's metrics.

    Checks, each one row:

    * ``floor/rougeL``: ``eval/rougeL >= gate.min_rougeL``;
    * ``floor/sentiment_macro_f1``: ``eval/sentiment_macro_f1 >= gate.min_macro_f1``;
    * ``regression/<metric>`` (only when the champion has that metric): candidate ``>=``
      champion ``- gate.max_regression``.

    A missing candidate metric fails its rows. When both sides carry
    ``eval/test_fingerprint`` and they differ, the comparison is still made but a note says
    the champion was scored on another test split.

    Args:
        candidate: flat metrics (an evaluation result works as is).
        champion: the champion's metrics on the same keys, or None when there is no champion.
        cfg: thresholds.
    """
    checks = _floor_checks(candidate, cfg)
    notes: list[str] = []
    if champion is None:
        notes.append("no champion yet: only the absolute floors apply")
    else:
        checks += _regression_checks(candidate, champion, cfg, notes)
        fp_c, fp_ch = candidate.get(FINGERPRINT_KEY), champion.get(FINGERPRINT_KEY)
        if fp_c and fp_ch and fp_c != fp_ch:
            notes.append(
                f"champion was scored on test split {fp_ch}, candidate on {fp_c}: "
                "re-evaluate with evaluate.compare_champion for a like-for-like comparison"
            )
    return GateDecision(checks=checks, champion=champion, notes=notes)


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

    numbers = {f"candidate/{k}": v for k, v in candidate.items() if _number(candidate, k) is not None}
    numbers.update(
        {
            f"champion/{k}": v
            for k, v in (champion or {}).items()
            if k.startswith("eval/") and _number(champion, k) is not None
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
    (thresholds, URIs), metrics (every candidate/champion number and each check) and
    ``gate/decision.json``.

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
    with mlflow.start_run(run_name="gate", tags=tags, nested=nested) as run:
        mlflow.log_params(_gate_params(settings.gate, model_uris, champion))
        mlflow.log_metrics(_gate_numbers(candidate, champion, decision))
        mlflow.set_tag("gate.decision", "passed" if decision.passed else "failed")
        if decision.passed:
            _register_candidates(decision, candidate, model_uris, settings.gate, run.info.run_id)
        mlflow.log_dict(decision.to_dict(), "gate/decision.json")
    if not decision.passed:
        # Raised after the run closes so the gate run ends FINISHED with its decision logged.
        raise GateFailedError(decision)
    return decision


def _register_candidates(
    decision: GateDecision, candidate: dict[str, Any], model_uris: dict[str, Any], cfg: GateConfig, gate_run: str
) -> None:
    """Register both models, alias them ``challenger``, and promote when ``auto_promote``."""
    from reviewops.registry import registry

    version_tags = dict(candidate)
    version_tags.update({"gate_run_id": gate_run, "train_run_id": model_uris.get("run_id") or ""})
    for model, uri_key, name in (
        ("summarizer", "summarizer_uri", cfg.summarizer_name),
        ("sentiment", "sentiment_uri", cfg.sentiment_name),
    ):
        version = registry.register(str(model_uris[uri_key]), name, version_tags)
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
