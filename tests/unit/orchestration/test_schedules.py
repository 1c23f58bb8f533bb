"""The Prefect server's scheduler creates runs of a scheduled deployment (cron/interval schedules work).

Prefect 3.8.8's scheduler fails on every loop with SQLAlchemy 2.1 ("Can't evaluate bulk DML
statement") and never creates a scheduled run; the lock pins SQLAlchemy 2.0.x for that reason.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from reviewops.servers.postgres import free_port
from reviewops.servers.prefect_server import start_prefect
from reviewops.servers.process import stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_an_interval_schedule_gets_runs_from_a_real_server(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import IntervalSchedule
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    database = f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}"
    log = tmp_path / "prefect.log"
    server = start_prefect(database, tmp_path / "home", log, free_port())
    try:
        # Prefect caches its settings at import: an env var set now would not reach get_client.
        with temporary_settings({PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
            assert str(client.api_url).rstrip("/") == server.url
            flow_id = client.create_flow_from_name("schedule-probe")
            schedule = DeploymentScheduleCreate(schedule=IntervalSchedule(interval=timedelta(minutes=10)))
            client.create_deployment(flow_id=flow_id, name="hourly", schedules=[schedule])
            runs: list = []
            deadline = time.monotonic() + 120  # the scheduler loop runs every few seconds
            while not runs and time.monotonic() < deadline:
                time.sleep(2)
                runs = client.read_flow_runs(limit=50, sort=FlowRunSort.ID_DESC)  # sort=None is a 422 here
    finally:
        stop(server.as_dict())
    text = log.read_text()
    assert "bulk DML" not in text
    assert runs and all(run.state.is_scheduled() for run in runs), text[-3000:]
