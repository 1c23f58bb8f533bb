"""The gate's pure decision: the checks (floors, ceilings, no regression), the verdict and its tables.

:func:`decide` takes numbers and returns a :class:`GateDecision`; nothing here touches MLflow
or the registry (that is :mod:`reviewops.evaluation.gate`, which re-exports these names).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from reviewops.config import GateConfig
from reviewops.errors import ReviewOpsError

ROUGE_KEY = "eval/rougeL"
F1_KEY = "eval/sentiment_macro_f1"
# (metric key, floor attribute on GateConfig, model it belongs to)
GATED_METRICS = ((ROUGE_KEY, "min_rougeL", "summarizer"), (F1_KEY, "min_macro_f1", "sentiment"))
FINGERPRINT_KEY = "eval/test_fingerprint"
# The class-balanced rate (mean over negative and positive reviews): mostly positive test rows
# would otherwise hide upbeat titles written for every negative review.
CONTRADICTION_KEY = "eval/contradiction_rate_macro"
# (metric key, ceiling attribute on GateConfig): the candidate must stay at or below it.
CEILING_METRICS = ((CONTRADICTION_KEY, "max_contradiction_rate"),)
# The value a ceiling has while GateConfig does not define its field yet (None: the check is
# off, with a note); a GateConfig field wins, and a field set to None turns the ceiling off too.
CEILING_DEFAULTS: dict[str, float | None] = {"max_contradiction_rate": None}


@dataclass(frozen=True)
class GateCheck:
    """One row of the gate: a number, the threshold it had to reach, and the verdict."""

    name: str
    value: float | None
    threshold: float
    passed: bool
    detail: str = ""
    comparison: str = ">="  # how value had to compare with threshold: ">=" (a floor) or "<=" (a ceiling)


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
            rows.append([c.name, value, f"{c.comparison} {c.threshold:.4f}", "PASS" if c.passed else "FAIL", c.detail])
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


def metric_value(metrics: dict[str, Any] | None, key: str) -> float | None:
    """``metrics[key]`` as a float; None when absent, not a number, or NaN."""
    if not metrics or metrics.get(key) is None:
        return None
    try:
        value = float(metrics[key])
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def threshold_of(cfg: GateConfig, attr: str) -> float | None:
    """``gate.<attr>``; a ceiling GateConfig does not define yet reads :data:`CEILING_DEFAULTS`."""
    value = getattr(cfg, attr, CEILING_DEFAULTS.get(attr))
    return None if value is None else float(value)


def _limit_checks(candidate: dict[str, Any], cfg: GateConfig, notes: list[str]) -> list[GateCheck]:
    """``floor/<metric>`` (at least ``gate.min_*``) and ``ceiling/<metric>`` (at most ``gate.max_*``).

    A missing candidate metric fails its row; a ceiling set to None is off (a note says so).
    """
    limits = [(key, attr, ">=") for key, attr, _model in GATED_METRICS]
    limits += [(key, attr, "<=") for key, attr in CEILING_METRICS]
    checks = []
    for key, attr, op in limits:
        limit = threshold_of(cfg, attr)
        if limit is None:
            notes.append(f"gate.{attr} is not set: no ceiling on {key}")
            continue
        value = metric_value(candidate, key)
        ok = value is not None and (value >= limit if op == ">=" else value <= limit)
        kind = "floor" if op == ">=" else "ceiling"
        detail = f"gate.{attr}" if value is not None else f"{key} missing from evaluation"
        checks.append(GateCheck(f"{kind}/{key.removeprefix('eval/')}", value, limit, ok, detail, op))
    return checks


def _regression_checks(
    candidate: dict[str, Any], champion: dict[str, Any], cfg: GateConfig, notes: list[str]
) -> list[GateCheck]:
    """``regression/<metric>``: no more than ``gate.max_regression`` below the champion's number."""
    checks = []
    for key, _floor_attr, _model in GATED_METRICS:
        ref = metric_value(champion, key)
        if ref is None:
            notes.append(f"champion has no {key}: regression check skipped")
            continue
        value, threshold = metric_value(candidate, key), ref - cfg.max_regression
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
    * ``ceiling/contradiction_rate_macro``: ``eval/contradiction_rate_macro <=
      gate.max_contradiction_rate`` (the share of summaries whose sentiment opposes their
      review's, averaged over negative and positive reviews; see
      :mod:`reviewops.evaluation.faithfulness`);
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
    notes: list[str] = []
    checks = _limit_checks(candidate, cfg, notes)
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
