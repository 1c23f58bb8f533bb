"""The scoring flow's wiring: its command line, the task's call of run_score, the counts it logs, its deployment."""

from __future__ import annotations

import logging
import sys
import types

import pytest
from flows import score

from reviewops.config import Settings


def test_parse_args_maps_the_command_line():
    args = score.parse_args(["data/new.csv", "--out", "scored", "--batch", "b1", "--summaries", "sample:5"])
    assert (args.path, args.out_dir, args.batch, args.summaries) == ("data/new.csv", "scored", "b1", "sample:5")
    args = score.parse_args(["data/in"])
    assert (args.out_dir, args.batch, args.summaries) == (None, None, None)
    with pytest.raises(SystemExit):
        score.parse_args([])


def test_main_runs_the_flow_with_the_arguments(monkeypatch, capsys):
    seen = {}

    def fake_flow(path, settings, out_dir, batch, summaries):
        seen.update(path=path, settings=settings, out_dir=out_dir, batch=batch, summaries=summaries)
        return {"counts": {"input_rows": 3, "scored": 2, "quarantined": 1, "deduplicated": 0}}

    monkeypatch.setattr(score, "score_flow", fake_flow)
    monkeypatch.setattr(score, "load_settings", lambda: Settings())
    assert score.main(["in.csv", "--batch", "b1", "--summaries", "none"]) == 0
    assert seen["path"] == "in.csv" and seen["batch"] == "b1" and seen["summaries"] == "none"
    assert seen["out_dir"] is None and isinstance(seen["settings"], Settings)
    assert '"scored": 2' in capsys.readouterr().out


def test_score_task_calls_run_score_by_keyword(monkeypatch):
    calls = []

    class Result:
        def to_dict(self):
            return {"counts": {"input_rows": 5, "scored": 4, "quarantined": 1, "deduplicated": 0}}

    def run_score(settings, **kwargs):
        calls.append((settings, kwargs))
        return Result()

    module = types.ModuleType("reviewops.scoring.score")
    module.run_score = run_score
    monkeypatch.setitem(sys.modules, "reviewops.scoring.score", module)
    monkeypatch.setattr(score, "get_run_logger", lambda: logging.getLogger("test"))
    settings = Settings()
    out = score.score_batch.fn(settings, "in.csv", "scored", "b1", "sample:3")
    assert out["counts"]["scored"] == 4
    ((got_settings, kwargs),) = calls
    assert got_settings is settings
    assert {k: kwargs[k] for k in ("path", "out_dir", "batch", "summaries")} == {
        "path": "in.csv",
        "out_dir": "scored",
        "batch": "b1",
        "summaries": "sample:3",
    }
    assert score.counts_line(out) == "input_rows=5 scored=4 quarantined=1 deduplicated=0"


def test_score_deployment_runs_on_demand():
    from flows.deployments import SCORE_DEPLOYMENT, build_deployments

    deployments = {d.flow_name: d for d in build_deployments(Settings())}
    assert SCORE_DEPLOYMENT == "reviewops-score/score"
    scoring = deployments["reviewops-score"]
    assert scoring.name == "score" and not scoring.schedules
    assert deployments["reviewops-monitor-inbox"].schedules  # the others keep their schedules
