"""Which models score a batch: the registry champions by default, or a version or folder named by option.

A model is named one of four ways (``--sentiment-model`` / ``--summarizer-model``):

* nothing: the registered model's ``@champion`` (``gate.sentiment_name`` / ``gate.summarizer_name``),
  else ``<models_dir>/trained/<sentiment|summarizer>`` (the freshly trained folder), as the
  drift check does (:func:`reviewops.monitoring.predictors.champion_model_dir`);
* ``NAME@ALIAS`` (``review-sentiment@challenger``) or ``NAME/VERSION`` (``review-sentiment/3``);
* a bare registered ``NAME``: its champion;
* a local Hugging Face folder (anything that exists on disk wins over the forms above).

Each choice carries a fingerprint (the registry version, or a digest of a folder's config and
weights), so a rerun can tell whether the partitions already written came from the same model.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError

Role = Literal["sentiment", "summarizer"]
_VERSION_SPEC = re.compile(r"^(?P<name>[^/@\s]+)/(?P<version>\d+)$")
_ALIAS_SPEC = re.compile(r"^(?P<name>[^/@\s]+)@(?P<alias>[\w-]+)$")
_BARE_NAME = re.compile(r"^[\w.-]+$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class ModelChoice:
    """One model that scores: where its Hugging Face folder is and what to call it in the output."""

    role: str
    path: Path
    name: str  # registered name, or the folder's path
    version: str | None  # registry version; None for a plain folder
    fingerprint: str  # "NAME/VERSION", or "sha256:<digest of config + weights>"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the path as a string)."""
        return {**asdict(self), "path": str(self.path)}


@dataclass(frozen=True)
class ScoringModels:
    """The sentiment classifier and (unless summaries are off) the summarizer of one run."""

    sentiment: ModelChoice
    summarizer: ModelChoice | None

    def to_dict(self) -> dict[str, Any]:
        """``{"sentiment": {...}, "summarizer": {...} | None}``."""
        return {
            "sentiment": self.sentiment.to_dict(),
            "summarizer": self.summarizer.to_dict() if self.summarizer else None,
        }


def folder_fingerprint(path: Path) -> str:
    """``sha256:<hex>`` over a model folder's ``config.json`` and weight files (names and bytes)."""
    digest = hashlib.sha256()
    files = [path / "config.json", *sorted(p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES)]
    for file in files:
        if file.is_file():
            digest.update(file.name.encode())
            with file.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _registered_name(settings: Settings, role: Role) -> str:
    return settings.gate.sentiment_name if role == "sentiment" else settings.gate.summarizer_name


def _folder(role: Role, path: Path) -> ModelChoice:
    if not (path / "config.json").is_file():
        raise ReviewOpsError(f"{role} model folder {path} has no config.json (not a Hugging Face model folder)")
    return ModelChoice(role, path, str(path), None, folder_fingerprint(path))


def _registered(role: Role, name: str, version: str, path: Path) -> ModelChoice:
    return ModelChoice(role, path, name, str(version), f"{name}/{version}")


def _known_versions(name: str) -> str:
    import mlflow

    versions = mlflow.MlflowClient().search_model_versions(f"name = '{name}'")
    listed = sorted((str(v.version) for v in versions), key=int)
    return ", ".join(listed) if listed else "none"


def _open_registry(settings: Settings, spec: str) -> None:
    """Point MLflow at the project's registry; refuse (rather than create an empty store) when there is none."""
    from reviewops.monitoring.outputs import tracking_configured
    from reviewops.registry.tracking import configure_mlflow

    if not tracking_configured():
        raise ReviewOpsError(
            f"{spec!r} names a registered model, but no registry is configured here "
            "(no $MLFLOW_TRACKING_URI and no ./mlflow.db); run from the project folder or pass a model folder"
        )
    configure_mlflow(settings)


def _by_alias(settings: Settings, role: Role, name: str, alias: str) -> ModelChoice:
    from reviewops.registry.registry import download_model_dir, get_alias_version, require_model

    _open_registry(settings, f"{name}@{alias}")
    found = get_alias_version(name, alias)
    if found is None:
        require_model(name)  # an unknown name: the registry's one error, listing the known names
        raise ReviewOpsError(f"{name} has no @{alias} version (versions: {_known_versions(name)})")
    return _registered(role, name, str(found.version), download_model_dir(name, alias))


def _by_version(settings: Settings, role: Role, name: str, version: str) -> ModelChoice:
    import mlflow
    from mlflow.exceptions import MlflowException

    from reviewops.registry.registry import download_model_dir, require_model

    _open_registry(settings, f"{name}/{version}")
    try:
        mlflow.MlflowClient().get_model_version(name, version)
    except MlflowException:
        require_model(name)  # an unknown name: the registry's one error, listing the known names
        raise ReviewOpsError(f"{name} has no version {version} (versions: {_known_versions(name)})") from None
    return _registered(role, name, version, download_model_dir(f"models:/{name}/{version}"))


def _default(settings: Settings, role: Role) -> ModelChoice:
    """The champion when a registry is configured and has one, else the trained folder."""
    from reviewops.monitoring.outputs import tracking_configured

    name = _registered_name(settings, role)
    if tracking_configured():
        from reviewops.registry.registry import CHAMPION, champion_dir, get_alias_version
        from reviewops.registry.tracking import configure_mlflow

        configure_mlflow(settings)
        found = get_alias_version(name, CHAMPION)
        path = champion_dir(name) if found is not None else None
        if found is not None and path is not None:
            return _registered(role, name, str(found.version), path)
    trained = Path(settings.paths.models_dir) / "trained" / role
    if (trained / "config.json").is_file():
        return _folder(role, trained)
    raise ReviewOpsError(
        f"no {role} model: no {name}@champion in the registry and no {trained}; run `reviewops train` "
        f"and `reviewops gate`, or pass --{role}-model NAME@ALIAS|NAME/VERSION|PATH"
    )


def resolve_model(settings: Settings, role: Role, spec: str | Path | None = None) -> ModelChoice:
    """The model that plays ``role``, from an option value (see the module docstring) or the default.

    Raises:
        ReviewOpsError: an unknown name, alias or version (the message lists what exists), a
            folder that is not a model, or no default model at all.
    """
    if spec is None or str(spec).strip() == "":
        return _default(settings, role)
    text = str(spec).strip()
    if Path(text).expanduser().exists():
        return _folder(role, Path(text).expanduser())
    if match := _ALIAS_SPEC.match(text):
        return _by_alias(settings, role, match["name"], match["alias"])
    if match := _VERSION_SPEC.match(text):
        return _by_version(settings, role, match["name"], match["version"])
    if _BARE_NAME.match(text):
        return _by_alias(settings, role, text, "champion")
    raise ReviewOpsError(f"{role} model {text!r} is not a folder, NAME@ALIAS or NAME/VERSION")


def resolve_models(
    settings: Settings,
    *,
    sentiment: str | Path | None = None,
    summarizer: str | Path | None = None,
    summaries: str = "none",
) -> ScoringModels:
    """Both models of a run; no summarizer is looked up when ``summaries`` is ``none``."""
    return ScoringModels(
        sentiment=resolve_model(settings, "sentiment", sentiment),
        summarizer=None if summaries == "none" else resolve_model(settings, "summarizer", summarizer),
    )
