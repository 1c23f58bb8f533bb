"""``reviewops score --ray-address`` on a real two-node Ray cluster started with ``ray start`` on this machine.

Two raylets on one host, as a cluster of two machines would run them: a head (``ray start
--head``) and a worker node (``ray start --address``), one logical CPU each, token
authentication on (Ray 2.60's default for ``ray start``; the token is made for the test and
passed as ``$RAY_AUTH_TOKEN``, so ``~/.ray`` is neither read nor written). The CLI runs as a
subprocess against the head's address with the tiny classifier; the test checks that every row
is accounted for and scored, and that the predictor actors ran on both nodes (Ray's actor table,
read after the run: the engine records no node ids).

Each node is a ``ray start --block`` process in its own session, stopped with SIGTERM (Ray's own
handler drains the node and stops its processes), then its process group is killed. ``ray stop``
is NOT used: it kills every Ray process on the machine by name, other users' included. The head
gets a temp dir of its own (``--temp-dir``), so ``ray.init()`` elsewhere on the machine never finds
this cluster through ``/tmp/ray/ray_current_cluster``; the worker node shares it (one host).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from reviewops.config import Settings
from reviewops.data.generate import generate_reviews
from reviewops.scoring.dataset import read_scored
from reviewops.scoring.predictor import PROBA_COLUMNS
from reviewops.scoring.prepare import iter_partitions

# Starts two Ray nodes and an actor pool (a minute or more on 2 cores): make test runs it, make test-fast skips it.
pytestmark = pytest.mark.slow

ROWS, CHUNK, BATCH_SIZE = 400, 150, 8  # 3 partitions, staged as files of 8 x 8 = 64 rows: blocks for both actors
BATCH = "two-nodes"
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 180  # a node on a loaded 2-core machine takes 5-30 s
RUN_TIMEOUT_S = 420  # the run took 49 s on a loaded 2-core machine; a stuck pipeline never ends on its own
# What `ray start` gets on both nodes: 1 CPU, a small object store, OS-chosen worker and agent ports
# (two raylets share the host, so no fixed port may be used twice).
NODE_FLAGS = [
    "--num-cpus=1",
    "--num-gpus=0",
    f"--object-store-memory={150 * 1024**2}",
    "--min-worker-port=0",
    "--max-worker-port=0",
    "--dashboard-agent-listen-port=0",
    "--disable-usage-stats",
    "--block",
]
# Run in a fresh interpreter connected to the cluster: the node ids, and where the predictor actors ran.
QUERY = """
import json, sys, time, ray
from ray._private import state
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
deadline = time.time() + float(sys.argv[2])
while True:
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    if len(nodes) >= 2 or time.time() > deadline:
        break
    time.sleep(1)
actors = [
    {"class": a["ActorClassName"], "node": a["Address"]["NodeID"], "state": a["State"]}
    for a in state.actors().values()
]
print(json.dumps({"nodes": nodes, "cpus": ray.cluster_resources().get("CPU"), "actors": actors}))
ray.shutdown()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start --head exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray head did not listen on {port} in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def _descendants(procs: list[subprocess.Popen]) -> list[psutil.Process]:
    found = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            found += psutil.Process(proc.pid).children(recursive=True)
    return found


def _stop(procs: list[subprocess.Popen]) -> list[int]:
    """SIGTERM each node (worker first: Ray drains it and stops its processes), then kill what is left of
    the processes these nodes started (their process groups, then any descendant seen before); returns
    the pids that were still alive at the end (none expected)."""
    started = _descendants(procs)
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in reversed(procs):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only this node's processes
        proc.wait(timeout=30)
    for child in started:
        with contextlib.suppress(psutil.Error):
            child.kill()
    _, alive = psutil.wait_procs(started, timeout=10)
    return [p.pid for p in alive]


def _query(address: str, env: dict[str, str], wait_s: float = 0) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", QUERY, address, str(wait_s)],
        env=env,
        capture_output=True,
        text=True,
        timeout=wait_s + 180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    """A head and a worker node on this machine; yields the address, the environment to join it, the node ids."""
    # A short path: Ray's Unix sockets live under it (108-byte limit), so not pytest's tmp_path.
    temp_dir = Path(tempfile.mkdtemp(prefix="ro-ray-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        log = (temp_dir / f"{name}.log").open("w")
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", *args, *NODE_FLAGS, f"--temp-dir={temp_dir}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, killed at the end
        )
        procs.append(proc)
        return proc

    try:
        head = start("head", "--head", f"--port={port}", "--include-dashboard=false")
        _wait_for_port(port, head, temp_dir / "head.log")
        start("worker", f"--address={address}")
        info = _query(address, env, wait_s=START_TIMEOUT_S)
        logs = {p.name: p.read_text()[-2000:] for p in temp_dir.glob("*.log")}
        assert len(info["nodes"]) == 2, logs
        yield {"address": address, "env": env, "nodes": info["nodes"], "cpus": info["cpus"]}
    finally:
        left = _stop(procs)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes still alive after the cluster was stopped: {left}"


@pytest.fixture(scope="module")
def scored(tmp_path_factory, cluster) -> dict:
    """``reviewops score --ray-address`` on the cluster, sentiment only, the tiny classifier."""
    from reviewops.testing.tiny import build_tiny_encoder

    root = tmp_path_factory.mktemp("cluster")
    generate_reviews(ROWS, seed=11).to_csv(root / "in.csv", index=False)  # messy: quarantine and duplicates too
    settings = Settings(
        paths={"models_dir": str(root / "models")},
        score={"chunk_rows": CHUNK, "batch_size": BATCH_SIZE, "actors": 2, "actor_cpus": 0.5, "summaries": "none"},
    )
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    encoder = build_tiny_encoder(root / "enc")
    args = [str(BIN / "reviewops"), "--params", str(params), "score", str(root / "in.csv"), "--out", str(root / "out")]
    args += ["--batch", BATCH, "--sentiment-model", str(encoder), "--ray-address", cluster["address"]]
    args += ["--json", "--no-track"]
    started = time.time()
    try:
        proc = subprocess.run(args, env=cluster["env"], cwd=root, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc.stderr)
        pytest.fail(
            f"reviewops score on the two-node cluster did not finish in {RUN_TIMEOUT_S} s: Ray Data waits forever "
            "when a task it needs asks for a CPU no node has free (the read tasks are pinned to the driver's node, "
            f"where an actor holds half of its one CPU); stderr:\n{stderr[-3000:]}"
        )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {
        "result": json.loads(proc.stdout.strip().splitlines()[-1]),
        "out": root / "out",
        "input": root / "in.csv",
        "settings": settings,
        "seconds": time.time() - started,
    }


def test_cluster_has_two_nodes_of_one_cpu(cluster):
    assert len(set(cluster["nodes"])) == 2
    assert cluster["cpus"] == 2.0


def test_every_row_is_scored_or_accounted_for(scored, cluster):
    result = scored["result"]
    counts = result["counts"]
    assert result["ray"]["address"] == cluster["address"] and result["ray"]["cpus"] == 2.0  # joined, not local

    parts = list(iter_partitions(scored["settings"], path=scored["input"], batch=BATCH))  # the same prep, no Ray
    assert counts == {
        "input_rows": ROWS,
        "scored": sum(len(p.clean) for p in parts),
        "quarantined": sum(len(p.quarantined) for p in parts),
        "deduplicated": sum(len(p.duplicates) for p in parts),
    }
    assert counts["input_rows"] == counts["scored"] + counts["quarantined"] + counts["deduplicated"]
    assert counts["quarantined"] > 0 and counts["deduplicated"] > 0  # the batch is messy
    assert result["partitions"]["written"] == [0, 1, 2] and result["partitions"]["skipped"] == []

    got = read_scored(scored["out"], BATCH)
    expected_ids = pd.concat([p.clean["review_id"] for p in parts], ignore_index=True)
    assert got["review_id"].tolist() == expected_ids.tolist()  # every clean row, in input order
    assert got["sentiment"].notna().all() and set(got["sentiment"]) <= {"negative", "neutral", "positive"}
    assert (got[PROBA_COLUMNS].sum(axis=1) - 1).abs().max() < 1e-4
    assert got["summary"].isna().all()


def test_predictor_actors_ran_on_both_nodes(scored, cluster):
    actors = [a for a in _query(cluster["address"], cluster["env"])["actors"] if "ReviewPredictor" in a["class"]]
    assert len(actors) == 2, actors  # the pool: score.actors = 2, started once for the run
    assert {a["node"] for a in actors} == set(cluster["nodes"]), (actors, cluster["nodes"])
    assert {a["state"] for a in actors} == {"DEAD"}  # the pool was freed when the run ended
