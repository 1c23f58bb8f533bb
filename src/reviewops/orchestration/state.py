"""Shared state in Prefect variables: where the cooldown and the inbox ledger live when many workers run.

``orchestration.state`` decides: ``local`` keeps JSON files under ``<reports_dir>/monitor`` (one
machine), ``prefect`` keeps Prefect variables on the server of ``PREFECT_API_URL`` (every worker
sees the same values), ``auto`` is ``prefect`` when the environment variable ``PREFECT_API_URL`` is
set (a worker's or ``serve``'s flow runs have it) and ``local`` otherwise.

Atomicity relied on: the Prefect server keeps variable names unique (a database unique index),
so :func:`create` of a name that exists fails with HTTP 409 for every caller but one. That makes
a per-file claim in the inbox ledger atomic across workers. Read-modify-write of one variable
(the cooldown) is not atomic by itself: callers hold :func:`reviewops.orchestration.locks.state_lock`.
"""

from __future__ import annotations

import os
import re
from contextlib import suppress
from typing import Any

from reviewops.config import OrchestrationConfig, Settings

PAGE = 200  # variables per request (the server's largest page)


def uses_prefect(cfg: OrchestrationConfig) -> bool:
    """True when the cooldown, ledger and DVC limit live in Prefect (``state: prefect``, or ``auto`` + the env var)."""
    if cfg.state == "auto":
        return bool(os.environ.get("PREFECT_API_URL", "").strip())
    return cfg.state == "prefect"


def settings_use_prefect(settings: Settings) -> bool:
    """:func:`uses_prefect` of ``settings.orchestration``."""
    return uses_prefect(settings.orchestration)


def variable_name(settings: Settings, key: str) -> str:
    """``<work_pool>_<key>`` with anything but letters, digits and ``_`` turned into ``_`` (Prefect's rule)."""
    raw = f"{settings.orchestration.work_pool}_{key}".lower()
    return re.sub(r"[^a-z0-9_]", "_", raw)[:255]


def _client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def get(name: str, default: Any = None) -> Any:
    """The value of variable ``name``, ``default`` when it does not exist."""
    with _client() as client:
        variable = client.read_variable_by_name(name)
    return default if variable is None else variable.value


def put(name: str, value: Any) -> None:
    """Create or overwrite variable ``name`` (last writer wins: hold a lock around read-modify-write)."""
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate
    from prefect.exceptions import ObjectAlreadyExists

    with _client() as client:
        if client.read_variable_by_name(name) is not None:
            client.update_variable(VariableUpdate(name=name, value=value))
            return
        try:
            client.create_variable(VariableCreate(name=name, value=value))
        except ObjectAlreadyExists:
            client.update_variable(VariableUpdate(name=name, value=value))


def create(name: str, value: Any) -> bool:
    """Create variable ``name`` unless it exists: True for the one caller that created it (atomic on the server)."""
    from prefect.client.schemas.actions import VariableCreate
    from prefect.exceptions import ObjectAlreadyExists

    with _client() as client:
        try:
            client.create_variable(VariableCreate(name=name, value=value))
        except ObjectAlreadyExists:
            return False
    return True


def delete(name: str) -> None:
    """Remove variable ``name`` (nothing when it does not exist)."""
    from prefect.exceptions import ObjectNotFound

    with _client() as client, suppress(ObjectNotFound):
        client.delete_variable_by_name(name)


def with_prefix(prefix: str) -> dict[str, Any]:
    """Every variable whose name starts with ``prefix``: name -> value (read in pages of :data:`PAGE`)."""
    found: dict[str, Any] = {}
    with _client() as client:
        for offset in range(0, 1_000_000, PAGE):
            body = {"limit": PAGE, "offset": offset, "variables": {"name": {"like_": prefix}}}
            page = client.request("POST", "/variables/filter", json=body).json()
            found.update({v["name"]: v["value"] for v in page if v["name"].startswith(prefix)})
            if len(page) < PAGE:
                break
    return found
