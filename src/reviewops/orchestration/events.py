"""The drift event and the re-tune deployment's trigger (``orchestration.retrain_on_drift: event``).

The monitor emits ``reviewops.drift.detected`` about resource ``reviewops.batch.<sha256[:16]>``
with the batch in the payload; the re-tune deployment's :func:`drift_trigger` (an automation on
the Prefect server) starts a re-tune run with ``batch`` and ``name`` taken from that payload, on
whichever worker of the pool picks it up. The monitor claims the cooldown before emitting, so
two workers that see drift in the same window emit one event between them.
"""

from __future__ import annotations

from typing import Any

DRIFT_EVENT = "reviewops.drift.detected"
RESOURCE_PREFIX = "reviewops.batch."


def resource_id(sha256: str) -> str:
    """``reviewops.batch.<first 16 hex digits of the batch's sha256>``."""
    return f"{RESOURCE_PREFIX}{sha256[:16]}"


def drift_payload(batch: str, name: str, sha256: str, drift: dict[str, Any]) -> dict[str, Any]:
    """What the re-tune needs (the batch file and its name) and what fired (signal names and scores)."""
    return {
        "batch": batch,
        "name": name,
        "sha256": sha256,
        "fired": [s["name"] for s in drift.get("signals", []) if s.get("fired")],
        "report": drift.get("html"),
        "drift_run_id": drift.get("mlflow_run_id"),
    }


def emit_drift(batch: str, name: str, sha256: str, drift: dict[str, Any]) -> str | None:
    """Emit ``reviewops.drift.detected`` for this batch; the event id (None when events are off)."""
    from prefect.events import emit_event

    event = emit_event(
        event=DRIFT_EVENT,
        resource={"prefect.resource.id": resource_id(sha256), "prefect.resource.name": name},
        payload=drift_payload(batch, name, sha256, drift),
    )
    return str(event.id) if event is not None else None


def drift_trigger() -> Any:
    """The re-tune deployment's trigger: one run per drift event, parameters from its payload."""
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(
        name="reviewops-retune-on-drift",
        description="Re-tune when the monitor reports drift on a batch (cooldown already claimed).",
        expect={DRIFT_EVENT},
        match={"prefect.resource.id": f"{RESOURCE_PREFIX}*"},
        posture="Reactive",
        threshold=1,
        parameters={"batch": "{{ event.payload.batch }}", "name": "{{ event.payload.name }}"},
    )
