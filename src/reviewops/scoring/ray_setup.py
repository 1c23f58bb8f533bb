"""Starting the local Ray that ``reviewops score`` runs on when no cluster is given, without Ray's opt-out notice.

A new local Ray (``ray.init(address="local")``) with ``RAY_AUTH_MODE`` unset turns token
authentication on, which scoring wants, and logs one WARNING saying so and how to turn it off
("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out").
:func:`init_local_ray` drops that one record, during that one call: authentication is left as Ray
sets it, and joining a cluster (``--ray-address``, ``$RAY_ADDRESS``) goes through plain
``ray.init`` with every notice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The logger and the text of Ray's notice (ray/_private/authentication/authentication_token_setup.py).
TOKEN_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"
TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster."


class _DropTokenNotice(logging.Filter):
    """Drops Ray's "token authentication is enabled" notice; its other records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        return not message.startswith(TOKEN_NOTICE)


@contextmanager
def without_token_notice() -> Iterator[None]:
    """Ray's "token authentication is enabled" notice dropped inside the block, at its own logger."""
    logger = logging.getLogger(TOKEN_NOTICE_LOGGER)
    notice_filter = _DropTokenNotice()
    logger.addFilter(notice_filter)
    try:
        yield
    finally:
        logger.removeFilter(notice_filter)


def init_local_ray(**options: Any) -> None:
    """``ray.init(address="local", **options)``: a new local Ray, without the token authentication notice."""
    import ray

    with without_token_notice():
        ray.init(address="local", **options)
