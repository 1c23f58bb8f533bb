"""``serve.api_workers`` / ``model_workers`` / ``model_threads`` reach BentoML as ``bentoml serve`` reads them.

The service module reads its settings at import, so each case imports it in a fresh process: with
``$REVIEWOPS_PARAMS`` (how a packaged Bento in a container gets them, e.g. from a ConfigMap), with a
``params.yaml`` in the working directory (``reviewops serve`` / ``bentoml serve`` from the project
root) and with neither (a Bento without a params file: the built-in defaults). The worker counts are
what BentoML's own allocator computes after ``inject_config`` (what ``bentoml serve`` does before
it starts the processes); the thread count is the service config its thread limiter reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from reviewops.config import Settings

_PROBE = """
import json
from _bentoml_impl.server.allocator import ResourceAllocator
from reviewops.serving import service

service.ReviewAnalyzer.inject_config()
allocator = ResourceAllocator()
print(json.dumps({
    name: {"workers": allocator.get_worker_env(svc)[0], "threads": svc.config.get("threads", 1)}
    for name, svc in service.ReviewAnalyzer.all_services().items()
}))
"""


def _served(cwd: Path, params_env: Path | None = None) -> dict[str, dict[str, int]]:
    env = {k: v for k, v in os.environ.items() if k != "REVIEWOPS_PARAMS"}
    # Override dirs: the module does not resolve the store models at import (nothing is loaded here).
    env.update(
        REVIEWOPS_SUMMARIZER_DIR=str(cwd / "no-summarizer"),
        REVIEWOPS_SENTIMENT_DIR=str(cwd / "no-sentiment"),
        BENTOML_HOME=str(cwd / "bentoml_home"),
        BENTOML_DO_NOT_TRACK="True",
    )
    if params_env is not None:
        env["REVIEWOPS_PARAMS"] = str(params_env)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _params(path: Path, **serve: int) -> Path:
    path.write_text(yaml.safe_dump({"serve": serve}), encoding="utf-8")
    return path


def test_reviewops_params_sets_workers_and_threads(tmp_path):
    params = _params(tmp_path / "k8s-params.yaml", api_workers=2, model_workers=3, model_threads=4)
    assert _served(tmp_path, params) == {
        "review_analyzer": {"workers": 2, "threads": 1},
        "review_models": {"workers": 3, "threads": 4},
    }


def test_params_yaml_in_the_working_directory_is_read(tmp_path):
    _params(tmp_path / "params.yaml", model_threads=3)
    assert _served(tmp_path) == {
        "review_analyzer": {"workers": 1, "threads": 1},
        "review_models": {"workers": 1, "threads": 3},
    }


def test_without_a_params_file_the_defaults_apply(tmp_path):
    defaults = Settings().serve
    assert _served(tmp_path) == {
        "review_analyzer": {"workers": defaults.api_workers, "threads": 1},
        "review_models": {"workers": defaults.model_workers, "threads": defaults.model_threads},
    }
    assert (defaults.api_workers, defaults.model_workers, defaults.model_threads) == (1, 1, 2)
