"""run_score on a local Ray (num_cpus=2, started once) with the tiny models.

The Ray output equals the in-process predictions row for row; a messy batch accounts for every
row; a run killed after its first partition resumes to the uninterrupted output; a rerun skips
every partition; the MLflow run and the CLI say the same.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from reviewops.config import Settings
from reviewops.data.generate import generate_reviews
from reviewops.errors import ReviewOpsError
from reviewops.reports import read_json
from reviewops.scoring.dataset import part_path, read_scored, report_path
from reviewops.scoring.models import resolve_models
from reviewops.scoring.predictor import PROBA_COLUMNS, ReviewPredictor, SampleCut
from reviewops.scoring.prepare import iter_partitions
from reviewops.scoring.score import ScoreResult, run_score

ROWS, CHUNK, SAMPLE = 600, 200, 7
BATCH = "messy"
PII = re.compile(r"@example\.com|https?://|www\.|555-\d{3}-\d{4}|1[3578]\d{9}")


class Crash(Exception):
    """Stands in for a kill in the middle of a run."""


# A local Ray cluster and an actor pool per module: make test runs these, make test-fast skips them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    import os

    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, ray_cluster) -> dict:
    from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder

    root = tmp_path_factory.mktemp("score")
    messy = generate_reviews(ROWS, seed=5)  # messy rows, duplicates and PII included
    messy.to_csv(root / f"{BATCH}.csv", index=False)
    settings = Settings(
        paths={"models_dir": str(root / "models")},
        score={"chunk_rows": CHUNK, "summaries": f"sample:{SAMPLE}", "batch_size": 64, "actors": 2},
    )
    return {
        "root": root,
        "input": root / f"{BATCH}.csv",
        "settings": settings,
        "sentiment": build_tiny_encoder(root / "enc"),
        "summarizer": build_tiny_causal_lm(root / "lm"),
    }


def _score(setup: dict, out: Path, **kwargs) -> ScoreResult:
    kwargs.setdefault("track", False)
    return run_score(
        setup["settings"],
        path=setup["input"],
        out_dir=out,
        sentiment_model=setup["sentiment"],
        summarizer_model=setup["summarizer"],
        **kwargs,
    )


@pytest.fixture(scope="module")
def first(setup) -> tuple[ScoreResult, Path]:
    """One uninterrupted run, logged to a throwaway MLflow store."""
    import mlflow

    out = setup["root"] / "out"
    uri = f"sqlite:///{setup['root']}/mlflow.db"
    old = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(setup["root"])
        result = _score(setup, out, track=True)
    mlflow.set_tracking_uri(old)
    return result, out


def _without_time(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["scored_at"]).reset_index(drop=True)


def test_ray_output_equals_in_process_predictions(setup, first):
    settings = setup["settings"]
    parts = list(iter_partitions(settings, path=setup["input"], batch=BATCH))
    cut = SampleCut(settings.score.summaries)
    for part in parts:
        cut.add(part.clean["review_id"])
    models = resolve_models(
        settings, sentiment=setup["sentiment"], summarizer=setup["summarizer"], summaries=settings.score.summaries
    )
    predictor = ReviewPredictor(settings=settings, models=models, plan=cut.plan())
    expected = pd.concat([predictor(p.clean.assign(batch=BATCH)) for p in parts], ignore_index=True)
    got = read_scored(first[1], BATCH)
    assert len(got) == len(expected) == first[0].counts["scored"]
    expected, got = _without_time(expected), _without_time(got)
    # in-process: True/False/None objects; read back: pandas' nullable boolean
    expected["summary_contradicts"] = expected["summary_contradicts"].astype("boolean")
    np.testing.assert_allclose(got[PROBA_COLUMNS].to_numpy(), expected[PROBA_COLUMNS].to_numpy(), atol=1e-5)
    same = [c for c in got.columns if c not in PROBA_COLUMNS]
    pd.testing.assert_frame_equal(got[same], expected[same], check_dtype=False)
    assert got["summary"].notna().sum() == SAMPLE


def test_messy_batch_accounts_for_every_row(setup, first):
    result, out = first
    counts = result.counts
    parts = list(iter_partitions(setup["settings"], path=setup["input"], batch=BATCH))
    assert counts == {
        "input_rows": ROWS,
        "scored": sum(len(p.clean) for p in parts),
        "quarantined": sum(len(p.quarantined) for p in parts),
        "deduplicated": sum(len(p.duplicates) for p in parts),
    }
    assert counts["quarantined"] > 0 and counts["deduplicated"] > 0  # the batch is messy
    assert counts["input_rows"] == counts["scored"] + counts["quarantined"] + counts["deduplicated"]
    assert len(read_scored(out, BATCH)) == counts["scored"]
    sides = {
        kind: sum(len(pd.read_parquet(f)) for f in (out / f"_{kind}").rglob("part-*.parquet"))
        for kind in ("quarantine", "duplicates")
    }
    assert sides == {"quarantine": counts["quarantined"], "duplicates": counts["deduplicated"]}
    assert sum(result.reasons["quarantined"].values()) == counts["quarantined"]
    assert sum(result.reasons["deduplicated"].values()) == counts["deduplicated"]
    assert result.partitions["total"] == 3 and result.partitions["written"] == [0, 1, 2]
    assert result.summaries == {"mode": f"sample:{SAMPLE}", "count": SAMPLE}
    assert read_json(report_path(out, BATCH)) == json.loads(json.dumps(result.to_dict(), default=str))
    scored = read_scored(out, BATCH)
    assert not scored["text"].str.contains(PII).any()  # PII masked before anything is written
    assert set(scored["sentiment"]) <= {"negative", "neutral", "positive"}
    assert scored["review_id"].is_unique and (scored["batch"] == BATCH).all()
    assert not (out / "_staging").exists()


def test_one_mlflow_run_per_batch(setup, first):
    import mlflow

    result, _ = first
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{setup['root']}/mlflow.db")
    run = client.get_run(result.mlflow["run_id"])
    assert run.info.run_name == f"score {BATCH}"
    assert run.data.metrics["score/input_rows"] == ROWS
    assert run.data.metrics["score/scored"] == result.counts["scored"]
    assert run.data.tags["score.output"] == result.outputs["scored"]
    assert run.data.tags["score.input.0"].endswith(result.inputs[f"{BATCH}.csv"])


def test_killed_run_resumes_to_the_uninterrupted_output(setup, first):
    out = setup["root"] / "killed"

    def crash_after_first_partition(message: str) -> None:
        if "rows scored" in message:
            raise Crash(message)

    with pytest.raises(Crash):
        _score(setup, out, log=crash_after_first_partition)
    done = sorted(p.name for p in (out / f"batch={BATCH}").glob("part-*.parquet"))
    assert len(done) == 1
    resumed = _score(setup, out)
    assert resumed.partitions["resumed"] is True
    assert len(resumed.partitions["skipped"]) == 1 and len(resumed.partitions["written"]) == 2
    assert resumed.counts == first[0].counts
    final, uninterrupted = _without_time(read_scored(out, BATCH)), _without_time(read_scored(first[1], BATCH))
    np.testing.assert_allclose(final[PROBA_COLUMNS].to_numpy(), uninterrupted[PROBA_COLUMNS].to_numpy(), atol=1e-5)
    same = [c for c in final.columns if c not in PROBA_COLUMNS]
    pd.testing.assert_frame_equal(final[same], uninterrupted[same])


def test_rerun_skips_every_partition_from_the_cli(setup, first):
    from typer.testing import CliRunner

    from reviewops.cli.app import app

    _, out = first
    before = {p: p.stat().st_mtime_ns for p in (out / f"batch={BATCH}").glob("part-*.parquet")}
    params = setup["root"] / "params.yaml"
    params.write_text(yaml.safe_dump(setup["settings"].model_dump(mode="json")))
    args = ["--params", str(params), "score", str(setup["input"]), "--out", str(out), "--json", "--no-track"]
    args += ["--sentiment-model", str(setup["sentiment"]), "--summarizer-model", str(setup["summarizer"])]
    proc = CliRunner().invoke(app, args)
    assert proc.exit_code == 0, proc.output
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data["partitions"]["skipped"] == [0, 1, 2] and data["partitions"]["written"] == []
    assert data["counts"] == first[0].counts
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert part_path(out, BATCH, 0).exists()


def test_other_settings_are_refused_not_mixed(setup, first):
    with pytest.raises(ReviewOpsError, match="scored with other models, summaries; use a new --out or --batch"):
        _score(setup, first[1], summaries="none")
    with pytest.raises(ReviewOpsError, match="use none, all or sample:N"):
        _score(setup, first[1], summaries="some")


def test_cli_errors_are_one_line(tmp_path):
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("reviewops")),
            "score",
            str(tmp_path / "missing.csv"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: input") and "not found" in proc.stderr
    assert "Traceback" not in proc.stderr
