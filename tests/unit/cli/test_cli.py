"""The reviewops console script: --help, --json results, one-line errors without tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import AMAZON_COLUMNS

EXE = shutil.which("reviewops") or str(Path(sys.executable).with_name("reviewops"))


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run([EXE, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_help_lists_every_stage():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("data", "ingest", "validate", "preprocess", "split"):
        assert command in proc.stdout


def test_generate_json_is_one_object_and_deterministic(tmp_path):
    a = run_cli("data", "generate", "--out", str(tmp_path / "a"), "--rows", "200", "--seed", "3", "--json")
    b = run_cli("data", "generate", "--out", str(tmp_path / "b"), "--rows", "200", "--seed", "3", "--json")
    assert a.returncode == 0, a.stderr
    info = json.loads(a.stdout)
    assert info["rows"] == 200 and info["scenario"] == "base"
    assert Path(info["path"]).read_bytes() == Path(json.loads(b.stdout)["path"]).read_bytes()


def test_validate_bad_file_is_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("text,rating\ncaf\xe9 au lait,5\n".encode("latin-1"))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = run_cli(
        "--set",
        f"paths.quarantine_dir={tmp_path}/q",
        "--set",
        f"paths.reports_dir={tmp_path}/r",
        "validate",
        str(bad),
        "--out",
        str(tmp_path / "valid.parquet"),
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "latin1.csv" in lines[0] and "UTF-8" in lines[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_unknown_param_override_is_named():
    proc = run_cli("--set", "split.nope=1", "split", "--help")
    # --help short-circuits before settings are loaded; a real command names the key.
    assert proc.returncode == 0
    proc = run_cli("--set", "split.nope=1", "split", "does-not-exist.parquet")
    assert proc.returncode == 2 and "split.nope" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_real_shared_file(tmp_path, shared_csv):
    proc = run_cli(
        "--set",
        f"paths.quarantine_dir={tmp_path}/q",
        "--set",
        f"paths.reports_dir={tmp_path}/r",
        "--set",
        f"paths.gx_dir={tmp_path}/gx",
        "validate",
        str(shared_csv),
        "--columns",
        AMAZON_COLUMNS,
        "--batch",
        "amazon",
        "--out",
        str(tmp_path / "valid.parquet"),
        "--no-docs",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ingested"] == 1000
    assert report["valid"] + report["quarantined"] == 1000
    assert Path(report["quarantine_path"]).exists()


def test_serve_hands_set_overrides_to_the_served_processes(tmp_path):
    """`--set serve.model_threads=4 serve` reaches BentoML through a merged params file (REVIEWOPS_PARAMS)."""
    import yaml

    proc = run_cli(
        "--set", f"paths.reports_dir={tmp_path}", "--set", "serve.model_threads=4", "serve", "--dry-run", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    prefix, _, command = proc.stdout.strip().partition(" ")
    assert prefix == f"REVIEWOPS_PARAMS={tmp_path.resolve() / 'serve' / 'params.yaml'}"
    assert "bentoml serve" in command
    served = yaml.safe_load((tmp_path / "serve" / "params.yaml").read_text())
    assert served["serve"]["model_threads"] == 4
    assert served["serve"]["api_workers"] == 1  # everything else as params.yaml says


def test_serve_without_overrides_adds_no_params_file(tmp_path):
    proc = run_cli("serve", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(sys.executable) and "REVIEWOPS_PARAMS" not in proc.stdout
