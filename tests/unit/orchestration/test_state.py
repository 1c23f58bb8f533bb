"""Where the shared state lives (orchestration.state) and how its Prefect variables are named."""

from __future__ import annotations

from reviewops.config import OrchestrationConfig, Settings
from reviewops.orchestration import state


def test_auto_follows_the_environment_variable(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert not state.uses_prefect(OrchestrationConfig())
    assert state.uses_prefect(OrchestrationConfig(state="prefect"))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert state.uses_prefect(OrchestrationConfig(state="auto"))
    assert not state.uses_prefect(OrchestrationConfig(state="local"))
    monkeypatch.setenv("PREFECT_API_URL", "  ")
    assert not state.uses_prefect(OrchestrationConfig(state="auto"))


def test_variable_names_follow_prefects_rule():
    assert state.variable_name(Settings(), "cooldown") == "reviewops_cooldown"
    odd = Settings(orchestration={"work_pool": "Team-A.pool"})
    assert state.variable_name(odd, "inbox_ab12") == "team_a_pool_inbox_ab12"
