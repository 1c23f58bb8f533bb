"""A local PostgreSQL cluster in one folder, driven by Debian's server binaries (``initdb``, ``pg_ctl``, ``psql``).

The cluster listens on TCP only (no Unix socket), on ``host`` (127.0.0.1 by default), and trusts its
own user there (``pg_hba.conf``: ``host all all 127.0.0.1/32 trust``): it is a building block for tests
and for one shared machine behind its own firewall, not a hardened database. The same folder can be
started again later: the data persist.

PostgreSQL refuses to run as root. When this process is root (containers), the binaries run as the
``postgres`` system user that Debian's package creates, owning the data folder, with the one
capability to read and traverse root's folders (``CAP_DAC_READ_SEARCH``), so a data folder under a
root-only temporary directory still works.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path
from types import TracebackType

from reviewops.errors import ReviewOpsError

PACKAGE = "postgresql-15"
_RUN_AS = "postgres"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@functools.cache
def bindir() -> Path:
    """The folder of ``initdb``/``pg_ctl``/``postgres``: on PATH, else ``pg_config --bindir``, else Debian's.

    Raises:
        ReviewOpsError: no PostgreSQL server binaries here (names the Debian package to install).
    """
    candidates: list[Path] = []
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(found).resolve().parent)
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)  # noqa: S603
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres", "psql")):
            return folder
    raise ReviewOpsError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH nor by `pg_config --bindir`: "
        f"install the Debian package {PACKAGE} (apt-get install {PACKAGE})"
    )


@functools.cache
def _drop_root() -> list[str]:
    """The argv prefix that runs a server binary as ``postgres`` when we are root; empty otherwise."""
    if os.geteuid() != 0:
        return []
    import pwd

    try:
        pwd.getpwnam(_RUN_AS)
    except KeyError:
        raise ReviewOpsError(
            f"PostgreSQL will not run as root and there is no '{_RUN_AS}' user: install {PACKAGE} (it creates one) "
            "or run as an ordinary user"
        ) from None
    setpriv = shutil.which("setpriv") or "setpriv"
    base = [setpriv, f"--reuid={_RUN_AS}", f"--regid={_RUN_AS}", "--clear-groups"]
    with_caps = [*base, "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    if subprocess.run([*with_caps, "true"], capture_output=True, check=False).returncode == 0:  # noqa: S603
        return with_caps
    return base


class PostgresCluster:
    """One PostgreSQL cluster: ``initdb`` on first start, ``pg_ctl start``/``stop``, databases, URLs.

    Example:
        with PostgresCluster(tmp_path / "pg") as pg:
            pg.create_database("mlflow")
            url = pg.url("mlflow")  # postgresql://reviewops@127.0.0.1:PORT/mlflow
    """

    def __init__(self, data_dir: Path, port: int | None = None, host: str = "127.0.0.1", user: str = "reviewops"):
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.user = user

    @property
    def log_file(self) -> Path:
        """The server's log (inside the data folder)."""
        return self.data_dir / "server.log"

    def __repr__(self) -> str:
        return f"PostgresCluster({str(self.data_dir)!r}, port={self.port}, host={self.host!r}, user={self.user!r})"

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout: float = 60.0) -> PostgresCluster:
        """Initialise the folder when empty, start the server and wait until it accepts connections.

        Idempotent: a cluster already running from this folder is adopted (its port is read back).

        Raises:
            ReviewOpsError: no binaries, a folder that is not a cluster, or a server that did not start.
        """
        running = self.running_port()
        if running is not None:
            self.port = running
            return self
        self._init_if_empty()
        self.port = self.port or free_port(self.host)
        options = f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories=''"
        args = ["start", "-w", "-t", str(int(timeout)), "-l", str(self.log_file), "-o", options]
        out = self._pg_ctl(*args)
        if out.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-800:] if self.log_file.is_file() else out.stderr
            raise ReviewOpsError(
                f"PostgreSQL in {self.data_dir} did not start on {self.host}:{self.port}: {_one_line(tail)}"
            )
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and wait; nothing happens when it is not running."""
        if self.running_port() is not None:
            self._pg_ctl("stop", "-m", "fast", "-w")

    def running_port(self) -> int | None:
        """The port of the server running from this folder, or None when it is not running."""
        if not (self.data_dir / "PG_VERSION").is_file() or self._pg_ctl("status").returncode != 0:
            return None
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
            return None

    def _init_if_empty(self) -> None:
        if (self.data_dir / "PG_VERSION").is_file():
            return
        if self.data_dir.is_dir() and any(self.data_dir.iterdir()):
            raise ReviewOpsError(f"{self.data_dir} is neither empty nor a PostgreSQL data folder: choose another")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if _drop_root():
            shutil.chown(self.data_dir, _RUN_AS, _RUN_AS)
        cmd = [str(bindir() / "initdb"), "-D", str(self.data_dir), "-U", self.user, "-E", "UTF8", "--no-locale"]
        out = self._run([*cmd, "--auth=trust", "--no-instructions"])
        if out.returncode != 0:
            raise ReviewOpsError(f"initdb {self.data_dir} failed: {_one_line(out.stderr)}")
        # Only loopback (and the chosen address) may connect, without a password; no local socket.
        rules = ["host all all 127.0.0.1/32 trust", "host all all ::1/128 trust"]
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            rules.append(f"host all all {self.host}/32 trust")
        (self.data_dir / "pg_hba.conf").write_text("\n".join(rules) + "\n")

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run([str(bindir() / "pg_ctl"), "-D", str(self.data_dir), *args])

    @staticmethod
    def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        # cwd="/": the postgres user may not be allowed into our working directory.
        return subprocess.run([*_drop_root(), *cmd], capture_output=True, text=True, check=False, cwd="/")  # noqa: S603

    # ------------------------------------------------------------------ databases

    def create_database(self, name: str) -> None:
        """Create database ``name`` unless it exists (owned by the cluster's user).

        Raises:
            ReviewOpsError: the server is not running or refused.
        """
        if not name.replace("_", "").isalnum():
            raise ReviewOpsError(f"database name {name!r}: use letters, digits and underscores only")
        exists = self.sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if exists.strip() != "1":
            self.sql(f'CREATE DATABASE "{name}"')

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one SQL statement with ``psql`` and return its unaligned output (rows, ``|``-separated).

        Raises:
            ReviewOpsError: the server is not running or the statement failed.
        """
        if self.port is None:
            raise ReviewOpsError(f"PostgreSQL in {self.data_dir} is not started: call start() first")
        cmd = [str(bindir() / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.host]
        cmd += ["-p", str(self.port), "-U", self.user, "-d", database, "-c", statement]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=_client_env())  # noqa: S603
        if out.returncode != 0:
            raise ReviewOpsError(f"psql on {self.host}:{self.port}/{database}: {_one_line(out.stderr)}")
        return out.stdout

    def url(self, database: str, driver: str = "postgresql") -> str:
        """A SQLAlchemy URL, e.g. ``url("prefect", "postgresql+asyncpg")`` -> ``postgresql+asyncpg://reviewops@127.0.0.1:PORT/prefect``."""
        if self.port is None:
            raise ReviewOpsError(f"PostgreSQL in {self.data_dir} has no port yet: call start() first")
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"


def _client_env() -> dict[str, str]:
    """psql's environment without a stray PG* variable (PGPASSWORD, PGSERVICE...) of the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:]) or "no output"
