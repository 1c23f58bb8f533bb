"""Serve the ReviewOps deployments: nightly retraining (cron) and the inbox drift monitor (interval).

One command, against the Prefect server named by ``PREFECT_API_URL``::

    prefect server start --host 127.0.0.1 --port 4200 &       # or any reachable Prefect server
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.deployments

This process registers both deployments and runs their flow runs (Prefect 3 ``serve``: no
agent or work pool needed), one at a time: both touch DVC's repository lock and the trained
model folder. Schedules come from ``params.yaml``: ``drift.retrain_cron`` and
``drift.inbox_interval_minutes``. Drop a batch into ``drift.inbox_dir`` (``data/inbox``) and the
next poll checks it; ``prefect deployment run reviewops-monitor-inbox/inbox`` polls now.
"""

from __future__ import annotations

from datetime import timedelta

from prefect import serve

from flows.monitor import monitor_inbox_flow
from flows.retrain import retrain_flow
from reviewops.config import Settings, load_settings

RETRAIN_DEPLOYMENT = "reviewops-retrain/nightly"
INBOX_DEPLOYMENT = "reviewops-monitor-inbox/inbox"


def build_deployments(settings: Settings | None = None) -> list:
    """The two runner deployments, with schedules from ``settings.drift``."""
    settings = settings or load_settings()
    drift = settings.drift
    return [
        retrain_flow.to_deployment(
            name=RETRAIN_DEPLOYMENT.split("/")[1],
            cron=drift.retrain_cron,
            description="Full retraining: data.dvc -> dvc repro -> train -> evaluate -> gate.",
            tags=["reviewops", "retrain"],
        ),
        monitor_inbox_flow.to_deployment(
            name=INBOX_DEPLOYMENT.split("/")[1],
            interval=timedelta(minutes=drift.inbox_interval_minutes),
            concurrency_limit=1,
            description=f"Drift check of each new file in {drift.inbox_dir}; re-tunes on drift.",
            tags=["reviewops", "monitor"],
        ),
    ]


if __name__ == "__main__":
    # limit=1: one flow run at a time in this process (DVC lock, shared models/trained).
    serve(*build_deployments(), limit=1)
