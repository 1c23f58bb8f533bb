"""`reviewops models list`, unknown names and the promote-without-challenger message, on a real SQLite MLflow."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reviewops.cli.app import app
from reviewops.errors import ReviewOpsError
from reviewops.registry import registry
from reviewops.registry.catalog import list_versions
from tests.unit.registry.helpers import MD5, NAMES, error_of


def test_rows_carry_aliases_rounded_metrics_runs_and_data_version(store) -> None:
    _root, first, second = store
    rows = list_versions({"l-sum": "summarizer", "l-sent": "sentiment"})
    assert [(r["model"], r["version"], r["aliases"]) for r in rows] == [
        ("l-sent", "2", ["challenger"]),
        ("l-sent", "1", ["champion"]),
        ("l-sum", "2", ["challenger"]),
        ("l-sum", "1", ["champion"]),
    ]
    by_key = {(r["model"], r["version"]): r for r in rows}
    assert by_key[("l-sum", "1")]["metrics"] == {
        "eval/rougeL": 0.1235,
        "eval/rouge1": 0.2,
        "eval/contradiction_rate_macro": 0.1,
    }
    assert by_key[("l-sent", "2")]["metrics"] == {"eval/sentiment_macro_f1": 0.82, "eval/sentiment_accuracy": 0.8765}
    assert (by_key[("l-sum", "1")]["run_id"], by_key[("l-sum", "1")]["run_name"]) == (first, "train")
    assert (by_key[("l-sum", "2")]["run_id"], by_key[("l-sum", "2")]["run_name"]) == (second, "retune batch-7")
    assert {r["data_version"] for r in rows} == {MD5}
    assert all(len(r["created"]) == 20 and r["created"].endswith("Z") for r in rows)
    assert by_key[("l-sum", "2")]["description"].startswith("Quality gate passed: all ")


def test_cli_lists_as_json_and_as_tables(store) -> None:
    runner = CliRunner()
    result = runner.invoke(app, [*NAMES, "models", "list", "--name", "l-sum", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [m["name"] for m in payload["models"]] == ["l-sum"]
    model = payload["models"][0]
    assert model["aliases"] == {"challenger": "2", "champion": "1"}
    assert [v["version"] for v in model["versions"]] == ["2", "1"]
    assert model["versions"][1]["metrics"]["eval/rougeL"] == 0.1235

    table = runner.invoke(app, [*NAMES, "models", "list"])
    assert table.exit_code == 0, table.output
    for text in ("l-sent", "l-sum", "champion", "challenger", "rougeL 0.1235", "retune batch-7", MD5[:12]):
        assert text in table.stdout, text


def test_unknown_name_is_no_such_model_everywhere(store) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, [*NAMES, "models", "list", "--name", "l-summ"])
    assert error_of(listed) == "no such registered model 'l-summ'; known: l-sent, l-sum"
    for args in (["promote", "l-summ"], ["promote", "l-summ", "--version", "1"], ["rollback", "l-summ"]):
        assert error_of(runner.invoke(app, args)) == "no such registered model 'l-summ'; known: l-sent, l-sum", args
    with pytest.raises(ReviewOpsError, match="no such registered model 'l-summ'; known: l-sent, l-sum"):
        registry.download_model_dir("l-summ")
    assert registry.champion_metrics("l-summ") is None  # the gate's first run: no champion yet, no error


def test_promote_without_challenger_says_what_to_do(store) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["promote", "l-sent"]).exit_code == 0  # v2, the challenger, becomes champion
    text = error_of(runner.invoke(app, ["promote", "l-sent"]))
    assert text.startswith(
        "l-sent has no 'challenger' to promote (version 2 is the champion; versions: 1 (previous_champion), "
        "2 (champion)). While gate.auto_promote is true"
    )
    assert "reviewops promote l-sent --version N" in text
    wrong = error_of(runner.invoke(app, ["promote", "l-sent", "--version", "3"]))
    assert wrong.startswith("l-sent has no version 3; its versions: 1 (previous_champion), 2 (champion)")


def test_empty_registry_says_to_run_make_run(store, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _, _ = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/empty.db")
    result = CliRunner().invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "no registered models" in result.output and "run `make run`" in result.output
    as_json = CliRunner().invoke(app, ["models", "list", "--json"])
    assert json.loads(as_json.stdout)["models"] == []
    named = CliRunner().invoke(app, ["models", "list", "--name", "x"])
    assert error_of(named).startswith("no such registered model 'x'; the registry is empty: run `make run`")
