"""What ``python -m flows.deployments --work-pool`` registers: sources, queues, concurrency, the drift trigger."""

from __future__ import annotations

from flows.deployments import (
    ENTRYPOINTS,
    INBOX_DEPLOYMENT,
    PROJECT,
    RETRAIN_DEPLOYMENT,
    RETUNE_DEPLOYMENT,
    SCORE_DEPLOYMENT,
    TRAINING_QUEUE,
    build_deployments,
)

from reviewops.config import Settings
from reviewops.orchestration.events import DRIFT_EVENT


def _by_name(deployments: list) -> dict:
    return {f"{d.flow_name}/{d.name}": d for d in deployments}


def test_pool_deployments_load_from_the_project_folder():
    pool = _by_name(build_deployments(Settings(), source=PROJECT, pool="team"))
    assert set(pool) == {RETRAIN_DEPLOYMENT, INBOX_DEPLOYMENT, SCORE_DEPLOYMENT, RETUNE_DEPLOYMENT}
    for name, deployment in pool.items():
        assert deployment.entrypoint == ENTRYPOINTS[name]
        assert deployment.storage is not None and str(deployment.storage.destination) == str(PROJECT)
        assert deployment.work_pool_name == "team"
    # training runs one at a time on their queue; inbox polls run side by side (files are claimed)
    assert pool[RETRAIN_DEPLOYMENT].work_queue_name == pool[RETUNE_DEPLOYMENT].work_queue_name == TRAINING_QUEUE
    assert pool[INBOX_DEPLOYMENT].work_queue_name is None and pool[INBOX_DEPLOYMENT].concurrency_limit is None
    assert pool[RETRAIN_DEPLOYMENT].schedules and pool[INBOX_DEPLOYMENT].schedules
    (trigger,) = pool[RETUNE_DEPLOYMENT].triggers
    assert trigger.expect == {DRIFT_EVENT} and trigger.parameters["batch"] == "{{ event.payload.batch }}"


def test_serve_keeps_one_inbox_poll_at_a_time():
    served = _by_name(build_deployments(Settings()))
    assert served[INBOX_DEPLOYMENT].concurrency_limit == 1
    assert all(d.work_pool_name is None and d.storage is None for d in served.values())
    assert served[RETUNE_DEPLOYMENT].triggers  # the event path works under serve too
