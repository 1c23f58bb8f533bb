"""A models worker whose models cannot be loaded stops the whole ``bentoml serve`` with a status of its own.

BentoML's circus arbiter restarts a worker whose start-up fails, forever (outside a container)
or leaves the server up without it (inside one, where it does not respawn), and ``bentoml serve``
exits 0 when stopped. So the ``bentoml serve`` process installs a SIGUSR2 handler
(:func:`install_supervisor_hook`, called when the service module is imported there) and the models
worker, once it gives up loading, signals it (:func:`stop_server`); the server then stops every
worker and exits with :data:`EXIT_MODELS_FAILED`.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Set by the `bentoml serve` process (the circus arbiter) to its pid; see install_supervisor_hook.
SUPERVISOR_ENV = "REVIEWOPS_SERVE_SUPERVISOR_PID"
EXIT_MODELS_FAILED = 3


def is_serve_supervisor() -> bool:
    """Whether this process is ``bentoml serve`` itself (the circus arbiter), not a worker or a tool."""
    argv = sys.argv
    return (
        len(argv) > 1
        and "serve" in argv[1:3]
        and "bentoml" in argv[0]
        and Path(argv[0]).name in ("bentoml", "__main__.py")
    )


def install_supervisor_hook() -> None:
    """In the ``bentoml serve`` process: on SIGUSR2 from the models worker, stop and exit :data:`EXIT_MODELS_FAILED`.

    The service module is imported by that process to find the services, so it installs here
    what the models worker needs to end the server with a status an orchestrator sees: the
    worker sends SIGUSR2 to its parent (only when its parent's pid is in
    ``$REVIEWOPS_SERVE_SUPERVISOR_PID``, i.e. this hook is there), the handler hands circus a
    SIGTERM (its graceful stop of every worker), and at exit the status becomes 3.
    """
    failed: list[bool] = []

    def on_models_failed(signum: int, frame: Any) -> None:
        failed.append(True)
        os.kill(os.getpid(), signal.SIGTERM)

    def exit_status() -> None:
        if failed:
            sys.stderr.write(
                f"reviewops: the models could not be loaded (see the models worker's log above); "
                f"bentoml serve exits with status {EXIT_MODELS_FAILED}\n"
            )
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_MODELS_FAILED)  # the handlers registered before this one are skipped

    try:
        signal.signal(signal.SIGUSR2, on_models_failed)
    except ValueError:  # not the main thread: no hook, the worker then just stays unready
        return
    atexit.register(exit_status)
    os.environ[SUPERVISOR_ENV] = str(os.getpid())


def stop_server(cause: str) -> bool:
    """From the models worker: ask ``bentoml serve`` to stop with :data:`EXIT_MODELS_FAILED`; False when it cannot."""
    supervisor = os.environ.get(SUPERVISOR_ENV, "")
    if not supervisor.isdigit() or int(supervisor) != os.getppid():
        logger.error(
            "the models failed to load (%s) and this worker was not started by `bentoml serve` with the "
            "reviewops hook: it stays up, not ready, answering 503",
            cause,
        )
        return False
    logger.error(
        "stopping the server: the models failed to load (%s); bentoml serve exits with status %d",
        cause,
        EXIT_MODELS_FAILED,
    )
    os.kill(os.getppid(), signal.SIGUSR2)
    return True
