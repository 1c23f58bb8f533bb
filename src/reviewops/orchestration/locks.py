"""Locks that hold across workers: DVC one call at a time, and the cooldown's check-and-claim.

Each lock is an in-process re-entrant lock and, when the state lives in Prefect
(:func:`reviewops.orchestration.state.uses_prefect`), a Prefect global concurrency limit with one
slot (created when missing). The server grants slots in a database transaction that checks the
limit, so one holder at a time across every worker; slots are leases (renewed while held), so a
killed worker's slot comes back when its lease runs out. Re-entrant in one thread: an outer
``with dvc_lock()`` (copy into data/raw + ``dvc commit``) makes the inner DVC calls free.

:func:`use` sets the orchestration settings the DVC calls of :mod:`reviewops.data.versioning` see
(they take no settings); a flow calls it first. Until then the defaults apply.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from reviewops.config import OrchestrationConfig
from reviewops.orchestration.state import uses_prefect

WAIT_S = 1800.0  # how long a caller waits for a slot before it fails (a long `dvc repro` elsewhere)
LEASE_S = 300.0  # slot lease, renewed in the background while held

_active = OrchestrationConfig()
_locks: dict[str, threading.RLock] = {}
_depth = threading.local()
_guard = threading.Lock()


def use(cfg: OrchestrationConfig) -> None:
    """The orchestration settings the DVC calls follow from now on in this process."""
    global _active
    _active = cfg


def active() -> OrchestrationConfig:
    """What :func:`use` set last (the defaults before)."""
    return _active


def ensure_limit(name: str, slots: int = 1) -> None:
    """Create the global concurrency limit ``name`` with ``slots`` slots unless it exists."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        with suppress(ObjectAlreadyExists):  # another worker created it first
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))


@contextmanager
def hold(name: str, cfg: OrchestrationConfig | None = None) -> Iterator[None]:
    """Hold lock ``name``: in this process always, across workers when the state is in Prefect."""
    cfg = cfg or _active
    with _guard:
        local = _locks.setdefault(name, threading.RLock())
    with local:
        depth = _depth.__dict__.get(name, 0)
        _depth.__dict__[name] = depth + 1
        try:
            if depth == 0 and name and uses_prefect(cfg):
                from prefect.concurrency.sync import concurrency

                ensure_limit(name)
                with concurrency(name, occupy=1, timeout_seconds=WAIT_S, lease_duration=LEASE_S, strict=True):
                    yield
            else:
                yield
        finally:
            _depth.__dict__[name] = depth


@contextmanager
def dvc_lock(cfg: OrchestrationConfig | None = None) -> Iterator[None]:
    """One DVC command (or a copy into data/raw + its commit) at a time: ``orchestration.dvc_limit``."""
    cfg = cfg or _active
    with hold(cfg.dvc_limit or "dvc", cfg if cfg.dvc_limit else OrchestrationConfig(state="local")):
        yield


@contextmanager
def state_lock(cfg: OrchestrationConfig | None = None) -> Iterator[None]:
    """Around a read-modify-write of shared state (the cooldown): ``orchestration.state_lock``."""
    cfg = cfg or _active
    with hold(cfg.state_lock or "state", cfg if cfg.state_lock else OrchestrationConfig(state="local")):
        yield
