"""Package the MLflow champions for serving: BentoML model store import and ``bentoml build``.

:func:`import_champions` copies the Hugging Face directory behind ``<name>@champion`` (see
:func:`reviewops.registry.registry.download_model_dir`) into a BentoML model ``<name>:<mlflow version>``
whose labels carry the MLflow name, version and run id; the settings section the model was
logged with travels beside the weights as ``reviewops_config.json`` so serving uses the same
prompt and lengths. :func:`run_package` (the stage) runs ``bentoml build`` on ``bentofile.yaml``.
BentoML keeps its store under ``$BENTOML_HOME`` (the Makefile sets ``./bentoml_home``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.serving.loading import CONFIG_FILE, SENTIMENT_DIR_ENV, SUMMARIZER_DIR_ENV

BENTOFILE = Path("bentofile.yaml")


def _config_artifact(model_root: Path) -> Path | None:
    """The ``config`` artifact of a downloaded pyfunc model (the dumped settings section), if any."""
    from mlflow.models import Model

    mlmodel = model_root / "MLmodel"
    if not mlmodel.is_file():
        return None
    artifacts = Model.load(str(mlmodel)).flavors.get("python_function", {}).get("artifacts", {})
    entry = artifacts.get("config")
    if entry is None:
        return None
    path = model_root / (entry["path"] if isinstance(entry, dict) else str(entry))
    return path if path.is_file() else None


def _find_model_root(hf_dir: Path) -> Path:
    for parent in [hf_dir, *hf_dir.parents]:
        if (parent / "MLmodel").is_file():
            return parent
    return hf_dir


def import_champion(name: str, alias: str = "champion", download_root: Path | None = None) -> dict[str, Any]:
    """Import ``name@alias`` into the BentoML model store as ``name:<version>`` (skipped when present).

    Returns:
        ``{"name", "mlflow_version", "run_id", "tag", "status": "imported"|"present"}``.

    Raises:
        ReviewOpsError: no such registered model (lists the known ones), or the alias does not exist
            (names the command that creates it).
    """
    import bentoml
    from bentoml.exceptions import NotFound

    from reviewops.registry.registry import download_model_dir, get_alias_version, require_model

    mv = get_alias_version(name, alias)
    if mv is None:
        require_model(name)  # an unknown name: the registry's one error, listing the known names
        raise ReviewOpsError(
            f"registered model {name!r} has no @{alias} version; run `reviewops gate` "
            f"(and `reviewops promote {name}`) before `reviewops package`"
        )
    version = str(mv.version)
    tag = f"{name}:{version}"
    result = {"name": name, "mlflow_version": version, "run_id": mv.run_id, "tag": tag}
    try:
        bentoml.models.get(tag)
        return {**result, "status": "present"}
    except NotFound:
        pass
    dst = None if download_root is None else download_root / f"{name}-v{version}"
    hf_dir = Path(download_model_dir(name, alias=alias, dst=dst))
    config = _config_artifact(_find_model_root(hf_dir))
    labels = {
        "mlflow_model_name": name,
        "mlflow_version": version,
        "mlflow_run_id": str(mv.run_id or ""),
        "mlflow_alias": alias,
        "project": "reviewops",
    }
    metadata = {
        **labels,
        "mlflow_source": str(mv.source or ""),
        "settings": json.loads(config.read_text(encoding="utf-8")) if config else {},
    }
    with bentoml.models.create(tag, labels=labels, metadata=metadata) as bento_model:
        shutil.copytree(hf_dir, bento_model.path, dirs_exist_ok=True)
        if config is not None:
            shutil.copy(config, Path(bento_model.path) / CONFIG_FILE)
    return {**result, "status": "imported"}


def import_champions(settings: Settings, alias: str = "champion") -> dict[str, Any]:
    """Import the summarizer and sentiment champions (``gate.*_name``) into the BentoML store.

    Idempotent: a version already in the store is not copied again.

    Returns:
        ``{"summarizer": {...}, "sentiment": {...}}`` as returned by :func:`import_champion`.
    """
    from reviewops.registry.tracking import configure_mlflow

    configure_mlflow(settings)
    root = Path(settings.paths.models_dir) / "registry"
    return {
        "summarizer": import_champion(settings.gate.summarizer_name, alias, root),
        "sentiment": import_champion(settings.gate.sentiment_name, alias, root),
    }


def run_package(settings: Settings, *, bentofile: Path | str = BENTOFILE, version: str | None = None) -> str:
    """``bentoml build`` of ``bentofile.yaml`` (build context ``src/``); returns the Bento tag.

    The service module pins the models through ``serve.summarizer_tag``/``sentiment_tag``
    (``:latest`` resolves to the newest imported version), so run :func:`import_champions`
    first. Override-dir environment variables are ignored here: a Bento always bundles
    store models.

    Args:
        settings: the project settings (``serve.summarizer_tag``/``sentiment_tag`` must be in the store).
        bentofile: the Bento definition; its folder's ``src/`` is the build context.
        version: the Bento version (default: generated by BentoML).

    Raises:
        ReviewOpsError: no bentofile, or a model tag not in the BentoML model store.
    """
    import os

    import bentoml

    bentofile = Path(bentofile).resolve()
    if not bentofile.is_file():
        raise ReviewOpsError(f"{bentofile} not found; run `reviewops package` from the project root")
    for env in (SUMMARIZER_DIR_ENV, SENTIMENT_DIR_ENV):
        os.environ.pop(env, None)
    for tag in (settings.serve.summarizer_tag, settings.serve.sentiment_tag):
        try:
            bentoml.models.get(tag)
        except Exception:
            raise ReviewOpsError(
                f"BentoML model {tag} is not in the model store "
                f"({os.environ.get('BENTOML_HOME', '~/bentoml')}); run `reviewops package` "
                "(it imports the MLflow champions first)"
            ) from None
    bento = bentoml.bentos.build_bentofile(str(bentofile), build_ctx=str(bentofile.parent / "src"), version=version)
    return str(bento.tag)
