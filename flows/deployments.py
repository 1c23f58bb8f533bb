"""Deploy the ReviewOps flows: nightly retraining (cron), the inbox monitor (interval), scoring and the drift re-tune.

One machine, one process (the default), against the Prefect server named by ``PREFECT_API_URL``::

    prefect server start --host 127.0.0.1 --port 4200 &       # or any reachable Prefect server
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.deployments

This process registers the deployments and runs their flow runs (Prefect 3 ``serve``: no
worker or work pool needed), one at a time: they touch DVC's repository lock, the trained
model folder and the scored dataset.

Many workers (a process work pool; ``orchestration.work_pool`` names it)::

    PREFECT_API_URL=... python -m flows.deployments --work-pool reviewops   # creates the pool if missing
    PREFECT_API_URL=... prefect worker start --pool reviewops               # on each machine, in the project

``--work-pool`` registers the same deployments with this project folder as their source (a
process worker runs each flow run in that folder: every worker needs the project at the same
path, e.g. a shared checkout). Retraining and the drift re-tune go to the pool's ``training``
queue (one run at a time: they share models/trained and reports/); inbox and scoring runs go
to ``default`` and run side by side: each inbox file is claimed by one run, DVC calls take the
``orchestration.dvc_limit`` slot, the cooldown lives in a Prefect variable.

Schedules come from ``params.yaml``: ``drift.retrain_cron`` and ``drift.inbox_interval_minutes``.
Drop a batch into ``drift.inbox_dir`` (``data/inbox``) and the next poll checks it;
``prefect deployment run reviewops-monitor-inbox/inbox`` polls now. Scoring has no schedule:
``prefect deployment run reviewops-score/score -p path=data/new.csv``. ``reviewops-retune/on-drift``
runs on the ``reviewops.drift.detected`` event (``orchestration.retrain_on_drift: event``).
"""

from __future__ import annotations

import argparse
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

from reviewops.config import Settings, load_settings
from reviewops.orchestration import events

RETRAIN_DEPLOYMENT = "reviewops-retrain/nightly"
INBOX_DEPLOYMENT = "reviewops-monitor-inbox/inbox"
SCORE_DEPLOYMENT = "reviewops-score/score"
RETUNE_DEPLOYMENT = "reviewops-retune/on-drift"
TRAINING_QUEUE = "training"  # work-pool queue of retraining and re-tunes: concurrency 1
ENTRYPOINTS = {
    RETRAIN_DEPLOYMENT: "flows/retrain.py:retrain_flow",
    INBOX_DEPLOYMENT: "flows/monitor.py:monitor_inbox_flow",
    SCORE_DEPLOYMENT: "flows/score.py:score_flow",
    RETUNE_DEPLOYMENT: "flows/monitor.py:retune_flow",
}
PROJECT = Path(__file__).resolve().parents[1]


def _flows(source: Path | None) -> dict[str, Any]:
    """Deployment name -> flow: imported here (serve), or loaded from ``source`` (a work pool's runs load it there)."""
    if source is None:
        from flows.monitor import monitor_inbox_flow, retune_flow
        from flows.retrain import retrain_flow
        from flows.score import score_flow

        flows = (retrain_flow, monitor_inbox_flow, score_flow, retune_flow)
        return dict(zip(ENTRYPOINTS, flows, strict=True))
    from prefect import Flow

    return {name: Flow.from_source(str(source), entrypoint) for name, entrypoint in ENTRYPOINTS.items()}


def build_deployments(settings: Settings | None = None, source: Path | None = None, pool: str | None = None) -> list:
    """Retraining and the inbox monitor on schedules from ``settings.drift``; scoring on demand; the re-tune on drift.

    ``source`` + ``pool``: deployments for a work pool, their code in ``source``; otherwise for ``serve``.
    """
    settings = settings or load_settings()
    drift, flows = settings.drift, _flows(source)
    training = {"work_pool_name": pool, "work_queue_name": TRAINING_QUEUE} if pool else {}
    return [
        flows[RETRAIN_DEPLOYMENT].to_deployment(
            name=RETRAIN_DEPLOYMENT.split("/")[1],
            cron=drift.retrain_cron,
            description="Full retraining: data.dvc -> dvc repro -> train -> evaluate -> gate.",
            tags=["reviewops", "retrain"],
            **training,
        ),
        flows[INBOX_DEPLOYMENT].to_deployment(
            name=INBOX_DEPLOYMENT.split("/")[1],
            interval=timedelta(minutes=drift.inbox_interval_minutes),
            # serve: one poll at a time; a pool: polls side by side, each file claimed by one of them
            concurrency_limit=None if pool else 1,
            description=f"Drift check of each new file in {drift.inbox_dir}; re-tunes on drift.",
            tags=["reviewops", "monitor"],
            **({"work_pool_name": pool} if pool else {}),
        ),
        flows[SCORE_DEPLOYMENT].to_deployment(
            name=SCORE_DEPLOYMENT.split("/")[1],
            description=f"Score a batch (file or folder) into {settings.score.out_dir}: run with -p path=...",
            tags=["reviewops", "score"],
            **({"work_pool_name": pool} if pool else {}),
        ),
        flows[RETUNE_DEPLOYMENT].to_deployment(
            name=RETUNE_DEPLOYMENT.split("/")[1],
            triggers=[events.drift_trigger()],
            description=f"Re-tune on a drifted batch: runs on each {events.DRIFT_EVENT} event "
            "(orchestration.retrain_on_drift: event).",
            tags=["reviewops", "retune"],
            **training,
        ),
    ]


def ensure_work_pool(pool: str) -> None:
    """Create process work pool ``pool`` (``prefect work-pool create POOL --type process``) and its ``training``
    queue with concurrency 1, unless they exist."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            with suppress(ObjectAlreadyExists):  # another caller created it first
                client.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template))
        try:
            client.read_work_queue_by_name(TRAINING_QUEUE, work_pool_name=pool)
        except ObjectNotFound:
            client.create_work_queue(name=TRAINING_QUEUE, work_pool_name=pool, concurrency_limit=1)


def deploy_to_pool(pool: str, settings: Settings | None = None, source: Path = PROJECT) -> list[str]:
    """Create the pool when missing and register every deployment in it (with its trigger); their ids.

    ``RunnerDeployment.apply(work_pool_name=...)``, not ``prefect.deploy``: that one builds or asks for a
    Docker image unless the source is remote, and its worker check sends a query this server rejects.
    """
    ensure_work_pool(pool)
    return [str(d.apply(work_pool_name=pool)) for d in build_deployments(settings, source=source.resolve(), pool=pool)]


def main(argv: list[str] | None = None) -> int:
    """Serve the deployments in this process, or (``--work-pool``) register them in a work pool and exit."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--work-pool",
        nargs="?",
        const="",
        default=None,
        help="register in this process work pool (default: orchestration.work_pool) instead of serving",
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.work_pool is None:
        from prefect import serve

        # limit=1: one flow run at a time in this process (DVC lock, shared models/trained).
        serve(*build_deployments(settings), limit=1)
        return 0
    pool = args.work_pool or settings.orchestration.work_pool
    ids = deploy_to_pool(pool, settings)
    print(f"{len(ids)} deployments in work pool {pool!r}; start workers: prefect worker start --pool {pool}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
