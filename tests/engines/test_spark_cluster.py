"""A Spark standalone cluster as the warehouse: a master and a worker on 127.0.0.1 started from pyspark's own
launcher (``spark-class``), a driver that opens ``spark://127.0.0.1:PORT?warehouse=DIR``, and the executors,
in the worker's JVMs, writing the Parquet tables to that directory (on one machine every executor sees it at
the same path, as a shared mount does on a real cluster). The simulated shop's identities and profiles come
out as DuckDB's.

The driver runs in a process of its own: this process may already run a local Spark, and a JVM holds one
SparkContext."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from tests.conftest import free_port
from tests.engines.test_parity import AS_OF, RECEIVED, same_rows, shop

from touchpoint import identity, profiles
from touchpoint.collect.store import write_messages
from touchpoint.warehouse import Warehouse

_DRIVER = """
import json, sys, time
start = time.perf_counter()
from tests.engines.test_parity import AS_OF, RECEIVED, same_rows, shop
from touchpoint import identity, profiles
from touchpoint.collect.store import write_messages
from touchpoint.warehouse import Warehouse
wh = Warehouse.open(sys.argv[1])
opened = time.perf_counter()
stored = write_messages(wh, shop(), source="sim", received_at=RECEIVED).stored
identity.rebuild(wh)
profiles.build(wh, as_of=AS_OF)
rows = wh.to_arrow(wh.table("profiles").select("profile_id", "user_id", "email", "orders", "revenue")).to_pylist()
executors = wh.spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # less the driver
seconds = {"open": opened - start, "work": time.perf_counter() - opened}
master = wh.spark.sparkContext.master
print(json.dumps({"seconds": seconds, "stored": stored, "profiles": rows, "master": master, "executors": executors}))
wh.close()
"""


def _spark_class(*args: str, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    import pyspark

    launcher = Path(pyspark.__file__).parent / "bin" / "spark-class"
    with log.open("wb") as out:
        return subprocess.Popen(
            ["bash", str(launcher), *args], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _wait_for(log: Path, text: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"{log.name}: no {text!r}:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    """A standalone master and one worker (2 cores, 1 GB) on 127.0.0.1; yields the master's URL."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("Spark needs Java 17: scripts/test installs openjdk-17-jre-headless")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}
    port = free_port()
    master_log, worker_log = tmp_path / "master.log", tmp_path / "worker.log"
    started = []
    try:
        master = _spark_class(
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(port), "--webui-port", "0"),
            log=master_log,
            env=env,
        )
        started.append(master)
        _wait_for(master_log, "New state: ALIVE", master)
        url = f"spark://127.0.0.1:{port}"
        worker = _spark_class(
            "org.apache.spark.deploy.worker.Worker",
            url,
            *("--host", "127.0.0.1", "--cores", "2", "--memory", "1g", "--webui-port", "0"),
            *("--work-dir", str(tmp_path / "work")),
            log=worker_log,
            env=env,
        )
        started.append(worker)
        _wait_for(worker_log, "Successfully registered with master", worker)
        yield url
    finally:
        for process in started:
            with_group = process.poll() is None
            if with_group:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_standalone_cluster_computes_identities_and_profiles_as_duckdb_does(
    cluster: str, spark_session: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "lake"
    shutil.copytree(spark_session, folder)  # migrated already: migrating costs a few Spark jobs per table
    url = f"{cluster}?warehouse={folder}&memory=1g&partitions=2"
    run = subprocess.run(
        [sys.executable, "-c", _DRIVER, url],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],  # the repository: the driver imports the parity test's shop
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(result["seconds"])
    assert result["master"] == cluster and result["executors"] == 1

    messages = shop()
    with Warehouse.open("duckdb://:memory:") as duck:
        assert result["stored"] == write_messages(duck, messages, source="sim", received_at=RECEIVED).stored
        identity.rebuild(duck)
        profiles.build(duck, as_of=AS_OF)
        expected = duck.to_arrow(duck.table("profiles").select("profile_id", "user_id", "email", "orders", "revenue"))
    rows = same_rows({"duckdb": expected, "spark": pa.Table.from_pylist(result["profiles"])}, key=["profile_id"])
    assert len(rows) > 50
    written = [name for name in os.listdir(folder / "profiles") if name.endswith(".parquet")]
    assert written, "the executors wrote no Parquet file into the shared directory"
