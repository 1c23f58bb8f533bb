"""The local Ray without Ray's token-authentication notice: the filter (no Ray), and `reviewops score` (slow)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reviewops.scoring.ray_setup import TOKEN_NOTICE, TOKEN_NOTICE_LOGGER, without_token_notice

ENABLED = TOKEN_NOTICE + " Set RAY_AUTH_MODE=disabled to opt out. For more information, see https://docs.ray.io"
DISABLED = "Token authentication is disabled for this Ray cluster. Anyone with network access to the cluster ..."


def test_only_the_enabled_notice_is_dropped_and_only_inside_the_block(caplog):
    logger = logging.getLogger(TOKEN_NOTICE_LOGGER)
    # The CLI's own quieting (reviewops.cli.common) may have filtered this logger earlier in the
    # process; set those filters aside so this test sees only without_token_notice's.
    others = list(logger.filters)
    for other in others:
        logger.removeFilter(other)
    try:
        with caplog.at_level(logging.INFO, logger=TOKEN_NOTICE_LOGGER):
            with without_token_notice():
                logger.warning(ENABLED)
                logger.warning(DISABLED)
                logger.info("Generated new authentication token and saved to %s", "/home/u/.ray/auth_token")
            logger.warning(ENABLED)
        assert [r.getMessage() for r in caplog.records] == [
            DISABLED,
            "Generated new authentication token and saved to /home/u/.ray/auth_token",
            ENABLED,
        ]
        assert logger.filters == []
    finally:
        for other in others:
            logger.addFilter(other)


@pytest.mark.slow  # a `reviewops score` run on a local Ray (one actor, tiny encoder): ~85 s on the shared 2-core box
def test_local_score_run_prints_no_token_notice(tmp_path):
    from reviewops.data.generate import generate_reviews
    from reviewops.testing.tiny import build_tiny_encoder

    generate_reviews(40, seed=1).to_csv(tmp_path / "b.csv", index=False)
    encoder = build_tiny_encoder(tmp_path / "enc")
    # RAY_AUTH_MODE unset (Ray then turns token authentication on and said so), no cluster to join.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "MLFLOW_TRACKING_URI"}
    args = ["--set", "score.ray_num_cpus=1", "--set", "score.actors=1", "score", str(tmp_path / "b.csv")]
    args += ["--out", str(tmp_path / "out"), "--summaries", "none", "--sentiment-model", str(encoder)]
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("reviewops")), *args, "--no-track"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "- Ray: local (1 CPUs)" in proc.stderr.splitlines()
    assert "Token authentication" not in proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr
    assert "40 input rows = 38 scored + 0 quarantined + 2 deduplicated" in proc.stdout.splitlines()
