"""Many workers, shared servers: PostgreSQL + MLflow server + Prefect server + a process work pool with two workers.

Everything real on 127.0.0.1: a throwaway PostgreSQL cluster holds both the MLflow backend store
and the Prefect database; MLflow serves the artifacts; ``python -m flows.deployments --work-pool``
registers the flows; two ``prefect worker start`` processes (one flow run each at a time) run
them in a tiny project. A first retraining makes a champion; then two drifted batches land in
the inbox at once and two inbox runs start together, one on each worker. Checked: each file was
claimed and processed once (ledger in Prefect variables), one re-tune between them (the cooldown
variable, claimed under the state lock), ``dvc status`` clean, the DVC limit free again, and the
registry's champion alias on the versions the last gate decision promoted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reviewops.servers import mlflow_server, prefect_server, process
from tests.conftest import make_tiny_project
from tests.integration.test_monitor_deploy import _free_port, _start, _stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POOL = "reviewops"


@pytest.fixture(params=["subflow", "event"])
def pool_stack(request, tmp_path: Path):
    """(project, env, logs): PostgreSQL, MLflow and Prefect servers, deployments in the pool, two workers.

    Parametrized by orchestration.retrain_on_drift: the re-tune as the monitor's subflow, or as the
    re-tune deployment's run started by the drift event's trigger.
    """
    from reviewops.servers.postgres import PostgresCluster

    pg = PostgresCluster(tmp_path / "pg").start()
    procs: list[subprocess.Popen] = []
    servers: list = []
    try:
        pg.create_database("mlflow")
        pg.create_database("prefect")
        # scoring without summaries, one actor on one CPU: two workers score at once on two cores
        quick = {"score.summaries": "none", "score.actors": 1, "score.ray_num_cpus": 1}
        overrides = {"drift.inbox_interval_minutes": 600, "orchestration.retrain_on_drift": request.param, **quick}
        project = make_tiny_project(tmp_path / "proj", overrides)
        mlflow_port, prefect_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "PREFECT_HOME": str(tmp_path / "prefect_home"),
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_PREFETCH_SECONDS": "2",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "DO_NOT_TRACK": "1",
            "BENTOML_HOME": str(tmp_path / "bentoml_home"),
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        }
        logs = {name: tmp_path / f"{name}.log" for name in ("mlflow", "prefect", "deploy", "worker-1", "worker-2")}
        servers = _start_servers(pg, tmp_path, logs, mlflow_port, prefect_port)
        deploy = subprocess.run(
            [sys.executable, "-m", "flows.deployments", "--work-pool", POOL],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        logs["deploy"].write_text(deploy.stdout + deploy.stderr)
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
        for i in (1, 2):
            worker = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--name", f"worker-{i}"]
            procs.append(_start([*worker, "--limit", "1"], project, env, logs[f"worker-{i}"]))
        yield project, env, logs
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for server in servers:
            process.stop(server.as_dict())
        pg.stop()


def _start_servers(pg, tmp_path: Path, logs: dict[str, Path], mlflow_port: int, prefect_port: int) -> list:  # noqa: ANN001
    """The MLflow and Prefect servers on ``pg``, as ``reviewops servers`` starts them; both booting at once."""
    mlflow_url, prefect_api = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{prefect_port}/api"
    backend = pg.url("mlflow", "postgresql+psycopg")
    mlflow_cmd = mlflow_server.mlflow_command(backend, tmp_path / "mlartifacts", "127.0.0.1", mlflow_port, workers=1)
    mlflow_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    prefect_env = prefect_server.prefect_env(
        pg.url("prefect", "postgresql+asyncpg"), tmp_path / "server_home", prefect_api
    )
    prefect_env.pop("PREFECT_API_URL", None)
    prefect_cmd = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(prefect_port),
    ]
    servers = [
        process.launch("mlflow", mlflow_cmd, mlflow_env, logs["mlflow"], mlflow_port, mlflow_url),
        process.launch("prefect", prefect_cmd, prefect_env, logs["prefect"], prefect_port, prefect_api),
    ]
    try:
        process.wait(servers[0], f"{mlflow_url}/health", 180)
        process.wait(servers[1], f"{prefect_api}/health", 180)
    except Exception:
        for server in servers:
            process.stop(server.as_dict())
        raise
    return servers


def _tails(logs: dict[str, Path]) -> str:
    return "\n".join(f"--- {n}\n{p.read_text(errors='replace')[-2500:]}" for n, p in logs.items() if p.is_file())


def _wait_runs(client, ids: list, timeout: float, logs: dict[str, Path]) -> list:  # noqa: ANN001 - Prefect client
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [client.read_flow_run(i) for i in ids]
        if all(r.state is not None and r.state.is_final() for r in runs):
            return runs
        time.sleep(2)
    raise AssertionError(f"flow runs {ids} not finished after {timeout}s:\n{_tails(logs)}")


def _runs_of(client, flow_name: str) -> list:  # noqa: ANN001 - Prefect client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    flows = FlowFilter(name=FlowFilterName(any_=[flow_name]))
    runs = client.read_flow_runs(flow_filter=flows, sort=FlowRunSort.ID_DESC, limit=50)
    # Not the future runs the server's scheduler creates from the deployments' cron/interval schedules.
    return [r for r in runs if not r.auto_scheduled]


def _wait_triggered(client, flow_name: str, timeout: float, logs: dict[str, Path]) -> list:  # noqa: ANN001
    """The runs of ``flow_name`` once at least one exists and all are final (then 10 s more: no second one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _runs_of(client, flow_name)
        if runs and all(r.state is not None and r.state.is_final() for r in runs):
            time.sleep(10)
            return _runs_of(client, flow_name)
        time.sleep(2)
    raise AssertionError(f"no finished {flow_name} run after {timeout}s:\n{_tails(logs)}")


def _retune_result(summaries: dict, seen: dict, mode: str) -> dict:
    """The re-tune's summary: the monitor's (subflow), or the triggered run's reports/monitor/<name>.retune.json."""
    from reviewops.orchestration.events import DRIFT_EVENT

    actions = sorted(s["action"].split(":")[0] for s in summaries.values())
    if mode == "subflow":
        assert actions == ["none", "retrained"], actions
        return next(s for s in summaries.values() if s["action"] == "retrained")
    assert actions == ["none", "retrain requested"], actions
    requested = next(s for s in summaries.values() if s["action"].startswith("retrain requested"))
    assert requested["event"]["event"] == DRIFT_EVENT and requested["event"]["id"]
    (run,) = seen["event_runs"]  # one event, one triggered re-tune
    assert run.state.is_completed() and run.parameters["name"] == requested["name"], (run.state, run.parameters)
    result = json.loads(Path(f"reports/monitor/{requested['name']}.retune.json").read_text())
    assert result["action"] == "retrained"
    return result


def _retrain_then_two_batches(settings, logs: dict[str, Path]) -> dict:  # noqa: ANN001 - Settings
    """A first retraining through the pool, then two drifted batches and two inbox runs at once."""
    from flows.deployments import INBOX_DEPLOYMENT, RETRAIN_DEPLOYMENT
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from reviewops.data import versioning
    from reviewops.monitoring import batches

    with get_client(sync_client=True) as client:
        (first,) = _wait_runs(client, [run_deployment(RETRAIN_DEPLOYMENT, timeout=0).id], 600, logs)
        assert first.state.is_completed(), f"{first.state}\n{_tails(logs)}"
        assert json.loads(Path("reports/gate.json").read_text())["passed"]
        seen = {
            "raw_before": sorted(p.name for p in Path("data/raw").iterdir()),
            "version_before": versioning.data_version(Path("data.dvc")),
        }
        # two drifted batches at once, two inbox runs at once (one per worker: --limit 1 each)
        seen["dropped"] = [
            batches.generate_batch(Path("data/inbox"), rows=400, seed=43 + i, tag=f"W{i}") for i in (1, 2)
        ]
        ids = [run_deployment(INBOX_DEPLOYMENT, timeout=0).id for _ in range(2)]
        seen["inbox_runs"] = _wait_runs(client, ids, 900, logs)
        if settings.orchestration.retrain_on_drift == "event":
            seen["event_runs"] = _wait_triggered(client, "reviewops-retune", 600, logs)
        seen["monitor_runs"] = _runs_of(client, "reviewops-monitor")
        seen["retune_runs"] = [r for r in _runs_of(client, "reviewops-retrain") if r.id != first.id]
        seen["dvc_limit"] = client.read_global_concurrency_limit_by_name(settings.orchestration.dvc_limit)
    return seen


def test_two_workers_two_batches_at_once(pool_stack, monkeypatch):
    import mlflow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from reviewops.config import load_settings
    from reviewops.data import versioning
    from reviewops.monitoring import cooldown, inbox

    project, env, logs = pool_stack
    monkeypatch.chdir(project)
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "PREFECT_HOME"):
        monkeypatch.setenv(key, env[key])  # the test reads the same Prefect variables as the workers
    settings = load_settings("params.yaml")
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        seen = _retrain_then_two_batches(settings, logs)
        runs, dropped = seen["inbox_runs"], seen["dropped"]
        assert all(r.state.is_completed() for r in runs), f"{[r.state for r in runs]}\n{_tails(logs)}"
        # both runs were in flight together: each started before the other ended
        a, b = runs
        assert a.start_time < b.end_time and b.start_time < a.end_time, (a.start_time, a.end_time, b.start_time)

        # each file claimed and processed exactly once: one monitor run per file, ledger entries in Prefect
        monitor_runs = seen["monitor_runs"]
        assert sorted(Path(r.parameters["batch"]).name for r in monitor_runs) == sorted(p.name for p in dropped)
        assert all(r.state.is_completed() for r in monitor_runs), [r.state for r in monitor_runs]
        ledger = inbox.read_ledger(settings)
        assert not inbox.ledger_path(settings).exists()  # the ledger lives in Prefect, not in a local file
        assert {name: ledger[name]["status"] for name in ledger} == {p.name: "completed" for p in dropped}
        summaries = {p.name: json.loads(Path(ledger[p.name]["summary"]).read_text()) for p in dropped}
        assert all(s["drift"]["drifted"] for s in summaries.values()), {n: s["drift"] for n, s in summaries.items()}

        # the cooldown held across the workers: one re-tune, the other batch saw the window
        retuned = _retune_result(summaries, seen, settings.orchestration.retrain_on_drift)
        held = next(s for s in summaries.values() if s["name"] != retuned["name"])
        assert held["action"].startswith("none: cooldown until")
        assert len(seen["retune_runs"]) == 1 and seen["retune_runs"][0].state.is_completed()
        stored = cooldown.read_cooldown_state(settings)
        assert [h["batch"] for h in stored["history"]] == [retuned["name"]]
        assert stored["last_retrain"]["run_id"] == retuned["retrain"]["run_id"]
        assert cooldown.cooldown_active(settings) and not cooldown.state_path(settings).exists()

    # DVC consistent: one new raw file, one new data version, stages up to date; the limit is free
    raw_after = sorted(p.name for p in Path("data/raw").iterdir())
    assert sorted(set(raw_after) - set(seen["raw_before"])) == [retuned["data"]["raw_file"]]
    assert retuned["data"]["old_version"] == seen["version_before"] != versioning.data_version(Path("data.dvc"))
    monkeypatch.delenv("PREFECT_API_URL")  # the last DVC call, outside the server's limit
    assert versioning.status(Path(".")) == "Data and pipelines are up to date."
    assert seen["dvc_limit"].limit == 1 and seen["dvc_limit"].active_slots == 0

    # the registry ends as the re-tune's gate decided: champion aliases on the versions it promoted
    gate = json.loads(Path("reports/gate.json").read_text())
    assert gate["passed"] is retuned["retrain"]["gate"]["passed"] is True
    # both URIs: an earlier test in the session may have set MLflow's global registry URI
    registry = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])
    for entry in gate["registered"].values():
        assert entry["promoted"] and entry["version"] == "2", entry
        assert str(registry.get_model_version_by_alias(entry["name"], "champion").version) == entry["version"]
