"""The drift event's resource and payload, and the re-tune deployment's trigger built from them."""

from __future__ import annotations

from reviewops.orchestration import events


def test_payload_names_the_batch_and_what_fired():
    drift = {
        "signals": [{"name": "embedding", "fired": True}, {"name": "text_length", "fired": False}],
        "html": "reports/drift/b.html",
        "mlflow_run_id": "r1",
    }
    payload = events.drift_payload("/p/data/inbox/b.csv", "b", "ab" * 32, drift)
    assert payload == {
        "batch": "/p/data/inbox/b.csv",
        "name": "b",
        "sha256": "ab" * 32,
        "fired": ["embedding"],
        "report": "reports/drift/b.html",
        "drift_run_id": "r1",
    }
    assert events.resource_id("ab" * 32) == "reviewops.batch." + "ab" * 8


def test_trigger_runs_the_retune_with_the_events_batch():
    trigger = events.drift_trigger()
    assert trigger.expect == {events.DRIFT_EVENT}
    assert trigger.posture == "Reactive" and trigger.threshold == 1
    assert trigger.parameters == {"batch": "{{ event.payload.batch }}", "name": "{{ event.payload.name }}"}
    assert trigger.match.root == {"prefect.resource.id": "reviewops.batch.*"}
