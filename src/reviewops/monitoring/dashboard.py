"""The Evidently workspace dashboard of the drift project: panels over batches, added once per project.

``evidently ui --workspace reports/evidently_workspace`` shows them on the ``reviewops-drift``
project's dashboard. Each panel plots a value every batch's snapshot holds
(:mod:`reviewops.monitoring.report`): Evidently's share of drifted columns (the same count the
decision and the HTML page use), the predicted negative share on the sample, the mean text length
and the detected-language mix on all rows.

No panel for the embedding (or text) drift score: its Evidently threshold is raised to the chance
AUC of each batch's sample size (:func:`reviewops.monitoring.decision.embedding_threshold`), the
threshold is a metric parameter, and Evidently splits a panel's series by parameters, so every
batch size would start a new one-point series. The score is in each snapshot and in MLflow
(``drift/embedding_auc``).

Panels are matched by title: :func:`ensure_panels` adds the missing ones and never duplicates,
so every drift check can call it.
"""

from __future__ import annotations

from typing import Any

DASHBOARD_TAB = "Drift over batches"
LANGUAGES = ("en", "zh")  # the values of descriptors.detected_language


def _metric(metric: str, legend: str, **labels: str) -> Any:
    from evidently.sdk.models import PanelMetric

    return PanelMetric(legend=legend, metric=f"evidently:metric_v2:{metric}", metric_labels=labels)


def drift_panels() -> list[Any]:
    """The dashboard's panels, in display order (titles are their identity)."""
    from evidently.sdk.panels import bar_plot_panel, line_plot_panel

    return [
        line_plot_panel(
            title="Share of drifted columns (all rows)",
            description="Evidently's Count of Drifted Columns on the descriptors, language, category, "
            "label and rating: the share_drifted signal of the decision",
            values=[_metric("DriftedColumnsCount", "share drifted", value_type="share")],
            size="half",
        ),
        line_plot_panel(
            title="Predicted negative share (sample)",
            description="Share of the sampled current reviews predicted negative (scored dataset, else the champion)",
            values=[
                _metric("UniqueValueCount", "negative", column="pred_sentiment", label="negative", value_type="share")
            ],
            size="half",
        ),
        line_plot_panel(
            title="Text length (mean characters, all rows)",
            description="Mean review length in characters of the current batch",
            values=[_metric("MeanValue", "mean characters", column="char_length")],
            size="half",
        ),
        bar_plot_panel(
            title="Language mix (detected language, all rows)",
            description="Share of the current batch's reviews per detected language",
            values=[
                _metric("UniqueValueCount", lang, column="detected_language", label=lang, value_type="share")
                for lang in LANGUAGES
            ],
            size="half",
            stacked=True,
        ),
    ]


def ensure_panels(workspace: Any, project_id: Any) -> list[str]:
    """Add the missing :func:`drift_panels` (by title) to the project's dashboard, in one write.

    Args:
        workspace: an Evidently ``Workspace``; project_id: the drift project's id.

    Returns:
        The titles added (empty when the dashboard already had them all).
    """
    from evidently.sdk.models import DashboardTabModel

    model = workspace.get_dashboard(project_id)
    have = {p.title for p in model.panels}
    missing = [p for p in drift_panels() if p.title not in have]
    if not missing:
        return []
    tab = next((t for t in model.tabs if t.title == DASHBOARD_TAB), None)
    if tab is None:
        tab = DashboardTabModel(title=DASHBOARD_TAB, panels=[])
        model.tabs.append(tab)
    model.panels.extend(missing)
    tab.panels.extend(p.id for p in missing)
    workspace.save_dashboard(project_id, model)
    return [p.title for p in missing]
