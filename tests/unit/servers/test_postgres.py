"""A real PostgreSQL cluster in tmp_path: initdb, start, a database, a driver connection, stop, start again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reviewops.errors import ReviewOpsError
from reviewops.servers import postgres
from reviewops.servers.postgres import PostgresCluster


def _query(url: str, sql: str) -> object:
    import asyncpg

    async def run() -> object:
        conn = await asyncpg.connect(url)
        try:
            if sql.lstrip().upper().startswith("SELECT"):
                return await conn.fetchval(sql)
            return await conn.execute(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_cluster_starts_creates_a_database_accepts_a_driver_and_keeps_its_data(tmp_path: Path) -> None:
    pg = PostgresCluster(tmp_path / "pg")
    with pg:
        assert pg.port is not None
        assert pg.url("prefect", "postgresql+asyncpg") == f"postgresql+asyncpg://reviewops@127.0.0.1:{pg.port}/prefect"
        pg.create_database("prefect")
        pg.create_database("prefect")  # exists: no error
        url = pg.url("prefect")
        _query(url, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
        assert _query(url, "SELECT current_user") == "reviewops"
        port = pg.port
        assert PostgresCluster(tmp_path / "pg").start().port == port  # idempotent: adopts the running server
    assert pg.running_port() is None
    with PostgresCluster(tmp_path / "pg") as again:  # same folder, new port: the data persisted
        assert _query(again.url("prefect"), "SELECT n FROM kept") == 42
        assert "prefect" in again.sql("SELECT datname FROM pg_database").split()
    again.stop()  # stopping a stopped cluster is a no-op


def test_a_folder_that_is_not_a_cluster_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ReviewOpsError, match="neither empty nor a PostgreSQL data folder"):
        PostgresCluster(tmp_path).start()


def test_sql_before_start_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ReviewOpsError, match="call start"):
        PostgresCluster(tmp_path / "pg").create_database("x")
    with pytest.raises(ReviewOpsError, match="letters, digits"):
        PostgresCluster(tmp_path / "pg", port=5).create_database("x; DROP")


def test_missing_binaries_name_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(postgres.glob, "glob", lambda pattern: [])
    postgres.bindir.cache_clear()
    try:
        with pytest.raises(ReviewOpsError, match="install the Debian package postgresql-15"):
            postgres.bindir()
    finally:
        postgres.bindir.cache_clear()
