"""Shared fixtures: offline, telemetry-free, isolated state per test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_CSV = ROOT.parent / "shared" / "data" / "amazon_fine_food_1k.csv"
AMAZON_COLUMNS = "review_id=Id,product_id=ProductId,text=Text,summary=Summary,rating=Score,timestamp=Time"

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture
def shared_csv() -> Path:
    """The real Amazon sample beside the project; skips when it is absent."""
    if not SHARED_CSV.exists():
        pytest.skip(f"{SHARED_CSV} not found (shared data lives beside the project, not in it)")
    return SHARED_CSV


def make_project(dest: Path, params_overrides: dict | None = None) -> Path:
    """A throwaway ReviewOps project: git + DVC repo with dvc.yaml, params.yaml and src/."""
    import yaml

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dvc.yaml", dest / "dvc.yaml")
    shutil.copy(ROOT / "bentofile.yaml", dest / "bentofile.yaml")
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "flows", dest / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in (params_overrides or {}).items():
        node = params
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "config", "user.email", "t@t"], cwd=dest, check=True)
    subprocess.run(["git", "config", "user.name", "t"], cwd=dest, check=True)
    return dest


# A make-run-sized project on tiny random-weight models: small enough for a test, the same code path.
TINY_RUN_OVERRIDES = {
    "generate.rows": 600,
    "sentiment.model": "all-minilm-l6-v2",  # the tiny encoder sits under this name (no e5 pull in tests)
    "summarizer.max_new_tokens": 4,
    "sentiment.max_length": 32,
    "train.profile": "quick",
    "evaluate.untuned_baseline": False,
    "evaluate.behaviour_checks": False,
    # random weights: floors at 0 and any regression allowed, so the gate passes and a champion exists
    "gate.min_rougeL": 0.0,
    "gate.min_macro_f1": 0.0,
    "gate.max_regression": 1.0,
    "gate.max_contradiction_rate": 1.0,
    "drift.sample_size": 100,
    "drift.embedding_plot_rows": 50,
    "drift.retune_profile": "quick",
}


def make_tiny_project(dest: Path, params_overrides: dict | None = None) -> Path:
    """A git + DVC project (:func:`make_project`) where `make run` runs on tiny random-weight models.

    The tiny models sit under the default model names in ``dest/models`` (so ``models pull`` is a
    no-op); params get :data:`TINY_RUN_OVERRIDES`, the drift embedding model, then ``params_overrides``.
    """
    from reviewops.data import versioning
    from reviewops.models.pretrained import MARKER, MINILM, SMOLLM2
    from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder

    models = dest / "models"
    for name, build in ((SMOLLM2, build_tiny_causal_lm), (MINILM, build_tiny_encoder)):
        build(models / name)
        (models / name / MARKER).write_text(json.dumps({"name": name, "source": "tiny test model"}))
    overrides = {**TINY_RUN_OVERRIDES, "drift.embedding_model": str(models / MINILM), **(params_overrides or {})}
    project = make_project(dest, overrides)
    versioning.ensure_repo(project)
    return project
