"""Serve the ReviewOps deployments: nightly retraining (cron), the inbox drift monitor (interval), scoring (on demand).

One command, against the Prefect server named by ``PREFECT_API_URL``::

    prefect server start --host 127.0.0.1 --port 4200 &       # or any reachable Prefect server
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.deployments

This process registers the three deployments and runs their flow runs (Prefect 3 ``serve``: no
agent or work pool needed), one at a time: they touch DVC's repository lock, the trained
model folder and the scored dataset. Schedules come from ``params.yaml``: ``drift.retrain_cron`` and
``drift.inbox_interval_minutes``. Drop a batch into ``drift.inbox_dir`` (``data/inbox``) and the
next poll checks it; ``prefect deployment run reviewops-monitor-inbox/inbox`` polls now.
Scoring has no schedule: ``prefect deployment run reviewops-score/score -p path=data/new.csv``
(optional ``-p out_dir=… -p batch=… -p summaries=sample:50``).
"""

from __future__ import annotations

from datetime import timedelta

from prefect import serve

from flows.monitor import monitor_inbox_flow
from flows.retrain import retrain_flow
from flows.score import score_flow
from reviewops.config import Settings, load_settings

RETRAIN_DEPLOYMENT = "reviewops-retrain/nightly"
INBOX_DEPLOYMENT = "reviewops-monitor-inbox/inbox"
SCORE_DEPLOYMENT = "reviewops-score/score"


def build_deployments(settings: Settings | None = None) -> list:
    """Retraining and the inbox monitor on schedules from ``settings.drift``; scoring on demand."""
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
        score_flow.to_deployment(
            name=SCORE_DEPLOYMENT.split("/")[1],
            description=f"Score a batch (file or folder) into {settings.score.out_dir}: run with -p path=...",
            tags=["reviewops", "score"],
        ),
    ]


if __name__ == "__main__":
    # limit=1: one flow run at a time in this process (DVC lock, shared models/trained).
    serve(*build_deployments(), limit=1)
