"""A models worker asks only its own `bentoml serve` (the one with the hook) to stop."""

from __future__ import annotations

from reviewops.serving.supervisor import SUPERVISOR_ENV, stop_server


def test_stop_server_only_signals_its_own_supervisor(monkeypatch):
    import os
    import signal

    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.delenv(SUPERVISOR_ENV, raising=False)
    assert stop_server("cause") is False and sent == []
    monkeypatch.setenv(SUPERVISOR_ENV, str(os.getppid() + 1))
    assert stop_server("cause") is False and sent == []
    monkeypatch.setenv(SUPERVISOR_ENV, str(os.getppid()))
    assert stop_server("cause") is True and sent == [(os.getppid(), signal.SIGUSR2)]
