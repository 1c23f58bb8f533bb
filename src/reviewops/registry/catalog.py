"""What the registry holds, one row per model version, for ``reviewops models list``.

Each row: the model and version, its aliases (``champion``, ``challenger``...), the key test
metrics (4 decimals), the run that logged it (id and name: ``train`` or ``retune <batch>``),
the data version that run trained on (``data/dvc_md5``, the ``data.dvc`` md5 that
:func:`reviewops.training.common.data_lineage` logs), when it was registered, and the gate's
verdict (the version's description). MLflow's own CLI has no command that lists versions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from reviewops.registry.registry import (
    TAG_DECIMALS,
    _as_float,
    _client,
    _quote,
    aliases_by_version,
    known_models,
    no_such_model,
)

# The figures an operator compares between versions, by what the model does.
KEY_METRICS: dict[str, tuple[str, ...]] = {
    "summarizer": ("eval/rougeL", "eval/rouge1", "eval/contradiction_rate_macro"),
    "sentiment": ("eval/sentiment_macro_f1", "eval/sentiment_accuracy"),
}
DATA_VERSION_PARAM = "data/dvc_md5"


def _created(ms: int | None) -> str:
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _key_metrics(mv: Any, run: Any, role: str | None) -> dict[str, float]:
    """The version's key metrics: its (rounded) tags, else its run's metrics; rounded to 4 decimals."""
    keys = KEY_METRICS.get(role or "") or tuple(k for group in KEY_METRICS.values() for k in group)
    run_metrics = run.data.metrics if run is not None else {}
    out: dict[str, float] = {}
    for key in keys:
        value = _as_float((mv.tags or {}).get(key))
        if value is None:
            value = _as_float(run_metrics.get(key))
        if value is not None:
            out[key] = round(value, TAG_DECIMALS)
    return out


def _run(run_id: str | None, cache: dict[str, Any]) -> Any:
    """The run behind a version (cached: both models of one training share it); None when deleted."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    if run_id not in cache:
        try:
            cache[run_id] = _client().get_run(run_id)
        except MlflowException:
            cache[run_id] = None
    return cache[run_id]


def version_rows(name: str, role: str | None = None, runs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per version of ``name``, newest first (see the module docstring for the fields)."""
    runs = {} if runs is None else runs
    versions = _client().search_model_versions(f"name = '{_quote(name)}'")
    aliases = aliases_by_version(name)
    rows = []
    for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
        run = _run(mv.run_id, runs)
        rows.append(
            {
                "model": name,
                "version": str(mv.version),
                "aliases": aliases.get(str(mv.version), []),
                "metrics": _key_metrics(mv, run, role),
                "run_id": mv.run_id or "",
                "run_name": run.info.run_name if run is not None else "",
                "data_version": run.data.params.get(DATA_VERSION_PARAM, "") if run is not None else "",
                "created": _created(mv.creation_timestamp),
                "description": mv.description or "",
            }
        )
    return rows


def list_versions(roles: dict[str, str], name: str | None = None) -> list[dict[str, Any]]:
    """Rows of every registered model (or only ``name``), models by name, versions newest first.

    Args:
        roles: registered name -> ``"summarizer"`` / ``"sentiment"`` (picks the key metrics);
            other names show whichever key metrics they have.
        name: list only this model.

    Raises:
        ReviewOpsError: ``name`` is not a registered model ("no such registered model 'X'; known: ...").
    """
    names = known_models()
    if name is not None:
        if name not in names:
            raise no_such_model(name)
        names = [name]
    runs: dict[str, Any] = {}
    return [row for n in names for row in version_rows(n, roles.get(n), runs)]
