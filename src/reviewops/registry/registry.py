"""MLflow model registry: register versions, champion/challenger aliases, promotion and rollback.

Aliases carry the deployment state of each registered model:

* ``challenger`` — the latest version that passed the quality gate;
* ``champion`` — the version that serving loads (``models:/<name>@champion``);
* ``previous_champion`` — the champion before the last promotion, so :func:`rollback` has
  somewhere to go. Each promoted version also gets a ``previous_champion`` *tag* naming the
  version it replaced, so repeated rollbacks walk back through the history.

Versions also carry the gate's numbers as tags (``eval/rougeL`` …, rounded to 4 decimals for
the UI), which :func:`champion_metrics` reads over the run's metrics, so the comparison does
not depend on which run the evaluation was logged to. An unknown model name is one error,
"no such registered model 'X'; known: …" (:func:`require_model`), wherever it is looked up.
Call :func:`reviewops.registry.tracking.configure_mlflow` (or set ``MLFLOW_TRACKING_URI``)
before using these helpers.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

from reviewops.errors import ReviewOpsError

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous_champion"
MODEL_DIR_ARTIFACT = "model_dir"
TAG_DECIMALS = 4  # figures stored as version tags are rounded for the UI


def _client():
    import mlflow

    return mlflow.MlflowClient()


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") or "not found" in str(exc).lower()


def known_models() -> list[str]:
    """Names of every registered model, sorted."""
    client = _client()
    names: list[str] = []
    token = None
    while True:
        page = client.search_registered_models(max_results=1000, page_token=token)
        names += [m.name for m in page]
        token = page.token
        if not token:
            return sorted(names)


def no_such_model(name: str) -> ReviewOpsError:
    """The one error for an unknown model name, listing the names the registry does have."""
    known = known_models()
    hint = f"known: {', '.join(known)}" if known else "the registry is empty: run `make run` (or `reviewops gate`)"
    return ReviewOpsError(f"no such registered model {name!r}; {hint}")


def require_model(name: str) -> None:
    """Raise :func:`no_such_model` unless ``name`` is a registered model.

    MLflow answers a lookup of a version or an alias of an unknown model with "has no version
    1" or "alias not found", which sends a user with a typo after the wrong thing.
    """
    from mlflow.exceptions import MlflowException

    try:
        _client().get_registered_model(name)
    except MlflowException as exc:
        if _is_missing(exc):
            raise no_such_model(name) from None
        raise


def aliases_by_version(name: str) -> dict[str, list[str]]:
    """``{"2": ["champion"], "1": ["previous_champion"]}`` (searching versions leaves aliases out)."""
    out: dict[str, list[str]] = {}
    for alias, version in sorted((_client().get_registered_model(name).aliases or {}).items()):
        out.setdefault(str(version), []).append(alias)
    return out


def version_list(name: str) -> str:
    """``"1 (champion), 2 (challenger), 3"``: the versions of ``name`` with their aliases."""
    aliases = aliases_by_version(name)
    numbers = sorted(int(mv.version) for mv in _client().search_model_versions(f"name = '{_quote(name)}'"))
    return ", ".join(f"{v} ({', '.join(aliases[str(v)])})" if str(v) in aliases else str(v) for v in numbers)


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def register(model_uri: str, name: str, tags: dict[str, Any] | None = None) -> str:
    """Register ``model_uri`` (``models:/m-…``, ``runs:/<id>/<path>``) as a new version of ``name``.

    The training split of the version's run is uploaded beside it (:mod:`.datasets`), so the drift
    reference of a champion can be fetched from the tracking server on any machine.

    Returns:
        The new version number as a string.
    """
    import mlflow

    from reviewops.registry.datasets import log_training_split

    str_tags = {k: str(v) for k, v in (tags or {}).items()}
    mv = mlflow.register_model(model_uri, name, tags=str_tags or None)
    run_id = mv.run_id or str_tags.get("train_run_id")
    if run_id:
        with contextlib.suppress(Exception):  # the reference is a convenience: never block a registration
            log_training_split(run_id)
    return str(mv.version)


def metric_tags(metrics: dict[str, Any]) -> dict[str, str]:
    """Version tags for ``metrics``: numbers rounded to :data:`TAG_DECIMALS`, other values as text."""
    out: dict[str, str] = {}
    for key, value in metrics.items():
        number = _as_float(value) if not isinstance(value, bool) else None
        if number is None or key.endswith("fingerprint"):
            out[key] = str(value)
        else:
            out[key] = str(round(number, TAG_DECIMALS))
    return out


def describe_version(name: str, version: str | int, description: str) -> None:
    """Set the description shown on the version's page in the MLflow UI."""
    _client().update_model_version(name, str(version), description=description)


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point ``name@alias`` at ``version``."""
    _client().set_registered_model_alias(name, alias, str(version))


def get_alias_version(name: str, alias: str):
    """The :class:`~mlflow.entities.model_registry.ModelVersion` behind ``name@alias``, or None.

    None also when the registered model itself does not exist yet.
    """
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _is_missing(exc):
            return None
        raise


def _delete_alias(name: str, alias: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        _client().delete_registered_model_alias(name, alias)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise


def promote(name: str, version: str | int | None = None) -> dict[str, Any]:
    """Make ``version`` (default: the ``challenger``) the ``champion`` of ``name``.

    The old champion keeps the ``previous_champion`` alias and is named in the new
    champion's ``previous_champion`` tag. A ``challenger`` alias that pointed at the promoted
    version is removed (it is the champion now).

    Returns:
        ``{"name", "champion", "previous_champion"}`` (versions as strings, or None).

    Raises:
        ReviewOpsError: no such model (names the known ones), no version given and no challenger
            exists (says what to do), or the version is unknown (lists the versions).
    """
    from mlflow.exceptions import MlflowException

    require_model(name)
    client = _client()
    if version is None:
        version = _challenger_version(name)
    version = str(version)
    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        if _is_missing(exc):
            raise ReviewOpsError(
                f"{name} has no version {version}; its versions: {version_list(name)} (`reviewops models list`)"
            ) from None
        raise
    current = get_alias_version(name, CHAMPION)
    previous = None
    if current is not None and str(current.version) != version:
        previous = str(current.version)
        set_alias(name, PREVIOUS, previous)
        client.set_model_version_tag(name, version, PREVIOUS, previous)
    set_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "promoted_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    challenger = get_alias_version(name, CHALLENGER)
    if challenger is not None and str(challenger.version) == version:
        _delete_alias(name, CHALLENGER)
    return {
        "name": name,
        "champion": version,
        "previous_champion": previous if previous is not None else _tag(name, version, PREVIOUS),
    }


def _challenger_version(name: str) -> str:
    """The version behind ``name@challenger``; a clear error (what exists, what to do) when unset."""
    challenger = get_alias_version(name, CHALLENGER)
    if challenger is not None:
        return str(challenger.version)
    champion = get_alias_version(name, CHAMPION)
    now = f"version {champion.version} is the {CHAMPION}" if champion is not None else f"no version is the {CHAMPION}"
    raise ReviewOpsError(
        f"{name} has no {CHALLENGER!r} to promote ({now}; versions: {version_list(name) or 'none'}). While "
        "gate.auto_promote is true (the default, as in `make run`) the gate makes each passing candidate the "
        f"champion itself. Promote a given version with `reviewops promote {name} --version N`, or keep the "
        "next passing candidate as the challenger with `reviewops --set gate.auto_promote=false gate`"
    )


def _tag(name: str, version: str, key: str) -> str | None:
    mv = _client().get_model_version(name, str(version))
    return (mv.tags or {}).get(key)


def rollback(name: str) -> dict[str, Any]:
    """Point ``champion`` back at ``previous_champion`` and step the history back one version.

    The rolled-back version gets a ``rolled_back`` tag; ``previous_champion`` moves to the
    version that the restored champion had replaced (or is removed when there is none).

    Returns:
        ``{"name", "champion", "rolled_back", "previous_champion"}``.

    Raises:
        ReviewOpsError: no such model, or there is no champion or no previous champion to return to.
    """
    require_model(name)
    client = _client()
    current = get_alias_version(name, CHAMPION)
    if current is None:
        raise ReviewOpsError(
            f"{name} has no {CHAMPION!r} version; nothing to roll back (promote one with `reviewops promote`)"
        )
    previous = get_alias_version(name, PREVIOUS)
    if previous is None or str(previous.version) == str(current.version):
        raise ReviewOpsError(
            f"{name}@{CHAMPION} is version {current.version} and there is no {PREVIOUS!r} to roll "
            f"back to; promote a specific version instead: `reviewops promote {name} --version N`"
        )
    target = str(previous.version)
    set_alias(name, CHAMPION, target)
    client.set_model_version_tag(
        name, str(current.version), "rolled_back", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )
    older = (previous.tags or {}).get(PREVIOUS)
    if older and older != target:
        set_alias(name, PREVIOUS, older)
    else:
        _delete_alias(name, PREVIOUS)
        older = None
    return {"name": name, "champion": target, "rolled_back": str(current.version), "previous_champion": older}


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def version_metrics(name: str, version: str | int) -> dict[str, Any]:
    """Metrics behind one version: its run's metrics, overlaid by numeric ``…/…`` version tags.

    The gate tags every version it registers with the numbers it judged (``eval/rougeL``,
    ``eval/sentiment_macro_f1``) and ``eval/test_fingerprint``; those win over run metrics.
    """
    from mlflow.exceptions import MlflowException

    client = _client()
    mv = client.get_model_version(name, str(version))
    out: dict[str, Any] = {}
    if mv.run_id:
        try:
            out.update(client.get_run(mv.run_id).data.metrics)
        except MlflowException as exc:  # run deleted: the tags still hold the numbers
            if not _is_missing(exc):
                raise
    for key, value in (mv.tags or {}).items():
        if "/" not in key:
            continue
        number = _as_float(value)
        if number is None or key.endswith("fingerprint"):
            out[key] = value
        elif not (isinstance(out.get(key), float) and round(out[key], TAG_DECIMALS) == number):
            out[key] = number  # the tags are rounded: the run's exact figure wins where it agrees
    out["version"] = str(mv.version)
    return out


def champion_metrics(name: str) -> dict[str, Any] | None:
    """Metrics of the current champion of ``name`` (see :func:`version_metrics`), or None."""
    mv = get_alias_version(name, CHAMPION)
    return None if mv is None else version_metrics(name, mv.version)


def _model_uri(name_or_uri: str, alias: str) -> tuple[str, str]:
    """(model URI, cache directory name) for a registered name or an explicit URI."""
    if re.match(r"^[a-z][a-z0-9+.-]*:/", name_or_uri):
        return name_or_uri, re.sub(r"[^\w.-]+", "_", name_or_uri.split(":/", 1)[1]).strip("_")
    mv = get_alias_version(name_or_uri, alias)
    if mv is None:
        require_model(name_or_uri)
        raise ReviewOpsError(
            f"registered model {name_or_uri!r} has no @{alias} version; run `reviewops gate` "
            f"(and `reviewops promote {name_or_uri}`) first"
        )
    return f"models:/{name_or_uri}/{mv.version}", f"{name_or_uri}-v{mv.version}"


def champion_dir(name: str, alias: str = CHAMPION) -> Path | None:
    """The Hugging Face folder of ``name@alias`` (downloaded once), or None when the alias is unset.

    The one lookup of a registered champion's model files; callers decide what "no champion"
    means for them (a base model, the freshly trained folder, or skipping a comparison).

    Raises:
        ReviewOpsError: the alias exists but its model cannot be downloaded or has no model folder.
    """
    if get_alias_version(name, alias) is None:
        return None
    return download_model_dir(name, alias)


def download_model_dir(name_or_uri: str, alias: str = CHAMPION, dst: Path | str | None = None) -> Path:
    """Download a logged pyfunc model and return the Hugging Face directory inside it.

    The pyfunc models are logged with ``artifacts={"model_dir": <HF dir>}``; the directory is
    found through the ``MLmodel`` file. Registered versions are immutable, so an existing
    download under ``dst`` (default ``models/registry/<name>-v<version>``) is reused.

    Args:
        name_or_uri: a registered model name (resolved through ``alias``) or a model URI
            (``models:/name@alias``, ``models:/m-…``, ``runs:/<id>/<path>``).
        alias: alias used with a bare name.
        dst: download directory.

    Raises:
        ReviewOpsError: the alias does not exist or the model has no ``model_dir`` artifact.
    """
    import mlflow
    from mlflow.models import Model

    uri, slug = _model_uri(name_or_uri, alias)
    root = Path(dst) if dst is not None else Path("models") / "registry" / slug
    if not (root / "MLmodel").is_file():
        root.mkdir(parents=True, exist_ok=True)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(root)))
        if local.resolve() != root.resolve() and (local / "MLmodel").is_file():
            root = local
    model = Model.load(str(root / "MLmodel"))
    artifacts = model.flavors.get("python_function", {}).get("artifacts", {})
    entry = artifacts.get(MODEL_DIR_ARTIFACT)
    if entry is None:
        if (root / "config.json").is_file():  # a model logged as a plain HF directory
            return root
        raise ReviewOpsError(
            f"{uri} has no {MODEL_DIR_ARTIFACT!r} artifact; it was not logged by "
            "`reviewops train` (pyfunc with artifacts={'model_dir': ...})"
        )
    path = entry["path"] if isinstance(entry, dict) else str(entry)
    return (root / path).resolve()
