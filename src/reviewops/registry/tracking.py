"""One place that decides where MLflow tracks runs and stores the registry.

``$MLFLOW_TRACKING_URI`` wins; otherwise runs go to ``sqlite:///<project>/mlflow.db`` with
artifacts under ``<project>/mlartifacts``, so a fresh checkout needs no server. Nothing here
runs at import time: stages call :func:`configure_mlflow` inside their functions.

Failure handling lives here too, so every stage behaves the same way:

* a tracking *server* is probed before any work starts, and MLflow's HTTP retries are bounded
  by ``tracking.timeout_s`` / ``tracking.max_retries`` (MLflow's own defaults retry for about
  four minutes); an unreachable server becomes one :class:`~reviewops.ReviewOpsError` naming
  the URI (:func:`tracking_errors`);
* runs carry the pid and host of the process that started them (:func:`process_tags`), so a
  run left RUNNING by a killed process is marked FAILED the next time training starts
  (:func:`fail_dead_runs`);
* MLflow stores artifact locations as absolute paths (``resolve_uri_if_local`` at experiment
  creation), so a copied project would write into the original's ``mlartifacts/``:
  :func:`check_artifact_root` refuses that, and :mod:`reviewops.registry.relocate` re-points a moved store.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reviewops.config import Settings, TrackingConfig
from reviewops.errors import ReviewOpsError

ENV_VAR = "MLFLOW_TRACKING_URI"
DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
PID_TAG = "reviewops.pid"
HOST_TAG = "reviewops.host"
KILLED_TAG = "reviewops.killed"
NOTE_TAG = "mlflow.note.content"  # shown as the run's description in the MLflow UI

# MLflow HTTP settings this module set (a value the user exported wins over tracking.*).
_ours: dict[str, str] = {}


def project_root() -> Path:
    """The project root: params paths are relative to the working directory, so is MLflow's."""
    return Path.cwd().resolve()


def tracking_uri(settings: Settings | None = None) -> str:
    """The tracking (and registry) URI: ``$MLFLOW_TRACKING_URI`` or the project's SQLite file."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env
    return f"sqlite:///{project_root() / DB_NAME}"


def redact(uri: str) -> str:
    """``uri`` without a password (``http://user:secret@host`` -> ``http://user:***@host``)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (absolute), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0]).resolve()


# --------------------------------------------------------------------------- reachability


def apply_http_limits(cfg: TrackingConfig) -> None:
    """Bound MLflow's HTTP retries: ``tracking.max_retries`` tries, ``tracking.timeout_s`` each.

    MLflow reads these environment variables on every request. A value exported by the user
    is kept; a value set here by an earlier call is replaced, so the latest settings win.
    """
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(cfg.max_retries),
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(cfg.timeout_s),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }  # waits 0 s, 2 s, 4 s...; MLflow's 2 doubles them
    for key, value in wanted.items():
        current = os.environ.get(key)
        if current is None or _ours.get(key) == current:
            os.environ[key] = value
            _ours[key] = value


def probe(uri: str, timeout_s: float) -> None:
    """Fail fast when ``uri`` is a tracking server that does not accept connections.

    Only ``http(s)://`` URIs are probed (a TCP connect, no request: servers behind auth
    answer too); databases and ``databricks`` are left to MLflow.

    Raises:
        ReviewOpsError: nothing accepted a connection within ``timeout_s`` seconds.
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(parts.hostname):
        return  # requests goes through the proxy: a direct connect proves nothing; the bounded retries apply
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        timed_out = isinstance(exc, TimeoutError)
        reason = f"no answer within {timeout_s:g} s" if timed_out else (exc.strerror or type(exc).__name__).lower()
        raise ReviewOpsError(unreachable_message(uri, reason)) from None


def unreachable_message(uri: str, reason: str) -> str:
    """The one line printed when the tracking server cannot be reached."""
    return (
        f"MLflow tracking server {redact(uri)} is unreachable ({reason}); start it, or point "
        f"${ENV_VAR} at a reachable server (unset it to use the project's {DB_NAME})"
    )


def _is_connection_failure(exc: BaseException) -> bool:
    """An MLflow error that means the server was not reached (after MLflow's own retries)."""
    from mlflow.exceptions import MlflowException

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # rest_utils.http_request wraps every requests failure (refused, timeout, DNS) this way;
        # bare requests errors are not matched: the Hugging Face hub raises those too.
        if (
            isinstance(current, MlflowException)
            and str(current).startswith("API request to ")
            and "failed with exception" in str(current)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_bad_answer(exc: BaseException) -> bool:
    """An HTTP error status from something that is not a working MLflow API (no MLflow error code)."""
    from mlflow.exceptions import MlflowException

    # rest_utils.verify_rest_response: a non-JSON error body (a proxy, another service, a 502).
    return (
        isinstance(exc, MlflowException)
        and str(exc).startswith("API request to endpoint ")
        and "failed with error code" in str(exc)
    )


@contextmanager
def tracking_errors(uri: str | None = None) -> Iterator[None]:
    """Turn "MLflow server not reachable" failures inside the block into one ReviewOpsError.

    A server that goes away in the middle of a stage (after the probe in :func:`configure_mlflow`
    passed) would otherwise end the command with MLflow's retry traceback.
    """
    try:
        yield
    except ReviewOpsError:
        raise
    except Exception as exc:
        if _is_bad_answer(exc):
            first = str(exc).splitlines()[0][:300]
            raise ReviewOpsError(
                f"MLflow tracking server {redact(uri or tracking_uri())} answered with an error "
                f"({first}); is ${ENV_VAR} an MLflow server?"
            ) from None
        if not _is_connection_failure(exc):
            raise
        text = str(exc) or type(exc).__name__
        # Keep the OS-level reason ("[Errno 111] Connection refused", "timed out"), not the URL soup.
        found = re.search(r"\[Errno -?\d+\][^\"')\]]*|[Rr]ead timed out|timed out", text)
        detail = found.group(0).strip() if found else text.splitlines()[0][:200]
        raise ReviewOpsError(unreachable_message(uri or tracking_uri(), detail)) from None


# --------------------------------------------------------------------------- experiment + artifact root


def _local_path(location: str) -> Path | None:
    """The filesystem path of a local artifact location (``file:`` URI or plain path), else None."""
    scheme = urllib.parse.urlsplit(location).scheme
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(location).path))
    if scheme == "" or (len(scheme) == 1 and sys.platform == "win32"):  # "C:\\..." parses as scheme "c"
        return Path(location)
    return None


def check_artifact_root(uri: str, experiment: Any, cfg: TrackingConfig) -> None:
    """Refuse a SQLite store whose experiment keeps its artifacts outside the store's folder.

    MLflow makes every local artifact location absolute when the experiment is created, so a
    copied project's ``mlflow.db`` still points at the *original* ``mlartifacts/``: runs of
    the copy would write there. Set ``tracking.allow_external_artifacts`` for a deliberate
    setup (e.g. artifacts on a shared disk).

    Raises:
        ReviewOpsError: the artifact root lies outside the database's folder; the message
            names both and the command that re-points the store.
    """
    db = sqlite_path(uri)
    if db is None or cfg.allow_external_artifacts or not experiment.artifact_location:
        return
    local = _local_path(experiment.artifact_location)
    if local is None:
        return
    project = db.parent
    resolved = local.resolve()
    if resolved == project or project in resolved.parents:
        return
    old_root = local.parent if local.name == ARTIFACTS_DIR else local
    raise ReviewOpsError(
        f"MLflow experiment {experiment.name!r} in {db} keeps its artifacts in {local}, outside the project "
        f"{project}: the project was copied or moved, and its runs would write into the original's artifacts. "
        f"Re-point the store with `python -m reviewops.registry.tracking relocate {old_root} {project}` (see README, "
        "MLflow), or set tracking.allow_external_artifacts=true if that location is intended."
    )


def setup_experiment(settings: Settings, root: Path | str | None = None) -> str:
    """Point MLflow tracking at ``$MLFLOW_TRACKING_URI`` or ``sqlite:///<root>/mlflow.db``; select the experiment.

    A server is probed first (``tracking.timeout_s``) and MLflow's HTTP retries are bounded.
    A new experiment on a SQLite store keeps its artifacts in ``mlartifacts/`` beside the
    database (not in the current directory); an existing one must still do so
    (:func:`check_artifact_root`). The experiment is tagged as machine learning (:mod:`.ui_links`).

    Returns:
        The tracking URI.

    Raises:
        ReviewOpsError: the server is unreachable, or the artifact root is outside the project.
    """
    import mlflow

    from reviewops.registry.ui_links import mark_ml_experiment

    cfg = settings.tracking
    root = Path(root or Path.cwd()).resolve()
    uri = os.environ.get(ENV_VAR, "").strip() or f"sqlite:///{root / DB_NAME}"
    apply_http_limits(cfg)
    probe(uri, cfg.timeout_s)
    mlflow.set_tracking_uri(uri)
    name = settings.train.experiment
    with tracking_errors(uri):
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            db = sqlite_path(uri)
            location = (db.parent / ARTIFACTS_DIR).as_uri() if db is not None else None
            try:
                mlflow.create_experiment(name, artifact_location=location)
            except Exception:  # noqa: BLE001 - created concurrently by another process
                if mlflow.get_experiment_by_name(name) is None:
                    raise
            experiment = mlflow.get_experiment_by_name(name)
        check_artifact_root(uri, experiment, cfg)
        mark_ml_experiment(mlflow.MlflowClient(), experiment)  # the UI's runs view, not GenAI's
        mlflow.set_experiment(name)
    return uri


def configure_mlflow(settings: Settings) -> str:
    """Point MLflow tracking *and* registry at :func:`tracking_uri` and select the experiment.

    See :func:`setup_experiment` (shared with training, so training, evaluation, the gate and
    the registry always talk to the same store, with the same probe and checks).

    Returns:
        The tracking URI in use.

    Raises:
        ReviewOpsError: as :func:`setup_experiment`.
    """
    import mlflow

    uri = setup_experiment(settings)
    mlflow.set_registry_uri(uri)
    return uri


# --------------------------------------------------------------------------- runs of killed processes


def process_tags(**extra: str) -> dict[str, str]:
    """Tags naming the process that starts a run, so a later start can tell whether it died."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), **extra}


def _alive(pid: int, run_started_ms: int | None) -> bool:
    """Whether ``pid`` is still the process that started the run (a reused pid does not count)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with accelerate/peft
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # A process created after the run started cannot have started it: the pid was reused.
        return run_started_ms is None or proc.create_time() * 1000 <= run_started_ms + 1000
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def fail_dead_runs(experiment_id: str, log: Callable[[str], None] | None = None) -> list[str]:
    """Mark FAILED the RUNNING runs of ``experiment_id`` whose process on this host is gone.

    Only runs tagged by :func:`process_tags` on this host are judged (a pid means nothing on
    another machine). Each one gets status FAILED and a note (``reviewops.killed`` and the
    run description) saying which process left it open.

    Returns:
        The run ids marked FAILED.
    """
    import mlflow

    host = socket.gethostname()
    client = mlflow.MlflowClient()
    escaped = host.replace("'", "\\'")
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{escaped}'",
        max_results=1000,
    )
    marked: list[str] = []
    for run in runs:
        try:
            pid = int(run.data.tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid, run.info.start_time):
            continue
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        note = (
            f"process {pid} on {host} ended without closing this run (killed?); marked FAILED at {when} "
            f"by process {os.getpid()}"
        )
        client.set_tag(run.info.run_id, KILLED_TAG, note)
        if not run.data.tags.get(NOTE_TAG):
            client.set_tag(run.info.run_id, NOTE_TAG, note)
        client.set_terminated(run.info.run_id, status="FAILED")
        marked.append(run.info.run_id)
        if log is not None:
            log(
                f"run {run.info.run_id} ({run.info.run_name}) was left RUNNING by process {pid}, "
                "which is gone: marked FAILED"
            )
    return marked


@contextmanager
def use_run(run_id: str | None = None, run_name: str = "run", tags: dict[str, str] | None = None) -> Iterator[str]:
    """Yield a run id to log to: ``run_id`` as given, else the active run, else a new run.

    Callers log with explicit ``run_id=`` arguments, so an already finished run (e.g. the
    training run named in ``reports/train.json``) can receive evaluation numbers without
    being reopened. Only a run started here is ended here; it carries :func:`process_tags`.
    """
    import mlflow

    if run_id:
        yield run_id
        return
    active = mlflow.active_run()
    if active is not None:
        yield active.info.run_id
        return
    with mlflow.start_run(run_name=run_name, tags=process_tags(**(tags or {}))) as run:
        yield run.info.run_id


if __name__ == "__main__":  # the relocate command named by check_artifact_root and the README
    from reviewops.registry.relocate import main

    sys.exit(main(sys.argv[1:]))
