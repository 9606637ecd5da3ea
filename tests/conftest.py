"""Fixtures shared by the whole suite: isolated settings, a warehouse, a real server on loopback."""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.warehouse.pg import PostgresServer

from touchpoint import keys
from touchpoint.config import Settings, reset_settings
from touchpoint.warehouse import Warehouse, open_warehouse

#: Folders whose conftest builds a session-wide fixture (a simulated shop, a fitted model, a served dashboard):
#: under pytest-xdist their tests run on one worker, so it is built once.
SHARED_FOLDERS = ("engines", "journeys", "mmm", "predict", "web")  # engines: one Spark JVM, one PostgreSQL


def work_unit(nodeid: str) -> str:
    """The tests that must share a pytest-xdist worker: a test file (its module fixtures are built once), or
    a whole folder in SHARED_FOLDERS.

    >>> work_unit("tests/web/test_dashboard_auth.py::test_x[/]"), work_unit("tests/cli/test_serve.py::test_y")
    ('tests/web', 'tests/cli/test_serve.py')
    """
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 and parts[1] in SHARED_FOLDERS else path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After each test's fixtures are torn down: collect its garbage, then freeze what survives.

    A worker accumulates long-lived objects (module fixtures, imported libraries, compiled queries);
    without this every full collection scans them all again, and allocation-heavy tests (hypothesis)
    ran several times slower late in a worker's life than alone (1.8 s alone, 6.6 s after tests/predict,
    16 s in a full run). What is frozen was reachable when frozen; each collection then scans only
    what the test itself allocated."""
    yield
    gc.collect()
    gc.freeze()


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``pytest -n N`` (how ``scripts/test`` runs the suite) send each :func:`work_unit` to one worker,
    the units with the most tests first. Our own rule, since xdist's ``loadgroup`` marks stopped taking
    effect with pytest 9.2 (a test's node id can no longer be given the group's suffix)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByWorkUnit(config, log)


def _default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TOUCHPOINT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TOUCHPOINT_RUN_JOBS", "false")


#: The Java options of every JVM the tests start (Spark in-process, the Connect server, a standalone cluster's
#: master, worker, executors and driver): the client compiler only and one garbage-collector thread. Spark's JVMs
#: live seconds to minutes here, where the optimising compiler's and the parallel collector's threads cost more
#: than they save, and take the other test worker's core: the parity shop's store, identities and profiles on
#: Spark took 87-95 s of CPU with the defaults, 57-58 s with these, in the same wall time. Never for production.
TEST_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@pytest.fixture(scope="session", autouse=True)
def _isolated_session() -> Iterator[None]:
    """The same environment for the module- and session-scoped fixtures (a served app, a built shop), which
    pytest sets up before any function-scoped fixture: without it their apps ran every job. Java's options
    (``TEST_JVM_OPTIONS``) are set here, before any session fixture starts a JVM."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _default_environment(monkeypatch)
        monkeypatch.setenv("JAVA_TOOL_OPTIONS", os.environ.get("JAVA_TOOL_OPTIONS", TEST_JVM_OPTIONS))
        reset_settings()
        yield
    reset_settings()


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from default settings, with no TOUCHPOINT_* variable leaking in, and apps it
    builds run no jobs unless it gives them (``create_app(jobs=...)``, ``Server(jobs=True)``): jobs
    that start with every server (a CLV fit, attribution, sessions) would compete for the CPU with the
    test and make answers change under it."""
    _default_environment(monkeypatch)
    reset_settings()
    yield
    reset_settings()
    if (channels := sys.modules.get("touchpoint.automations.channels")) is not None:
        channels.close_idle()  # the SMTP connections a delivery run kept for the next: the test's server is gone


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    wh = open_warehouse(settings)
    yield wh
    wh.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session (tests/warehouse/pg.py), stopped at its end."""
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A ``postgresql://`` URL of a database of this test's own (migrated, no rows), dropped after it."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)


ENGINES = ("duckdb", "postgresql")


@pytest.fixture(params=ENGINES)
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a warehouse with no rows on each engine in turn: an embedded DuckDB file, a PostgreSQL database."""
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'wh.duckdb'}"
    return str(request.getfixturevalue("postgres_url"))


def spark_url(folder: Path) -> str:
    """A Spark warehouse URL over ``folder`` for the tests (docs/scaling.md)."""
    return f"spark+local://{folder}?threads=2&partitions=2&memory=1g"


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The process's Spark (local[2], 2 shuffle partitions, 1 GB of driver memory), started once for the test
    session and stopped at its end (spark_engine.stop); every Spark warehouse of the session shares it.
    Yields a migrated Spark warehouse directory with no rows, which ``spark_warehouse_url`` copies (migrating
    a new one costs 5-20 s on Spark: each migration is a few Spark jobs)."""
    import gc
    import warnings

    from touchpoint.warehouse import spark_engine

    template = tmp_path_factory.mktemp("spark") / "migrated"
    with warnings.catch_warnings():
        # PySpark leaves its loopback sockets to the garbage collector (tests/engines/conftest.py)
        warnings.simplefilter("ignore", ResourceWarning)
        Warehouse.open(spark_url(template)).close()
        gc.collect()
    yield template
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        spark_engine.stop()
        gc.collect()


def spark_warehouse_url(template: Path, folder: Path) -> str:
    """A Spark warehouse of its own in ``folder``: a copy of the migrated ``template`` (``spark_session``)."""
    import shutil

    shutil.copytree(template, folder)
    return spark_url(folder)


@dataclass
class SparkConnect:
    """A Spark Connect server of the test session (``spark_connect``) and a migrated warehouse to copy."""

    url: str  # sc://127.0.0.1:PORT
    template: Path  # a migrated warehouse directory with no rows (migrated through this server)
    log: Path

    def warehouse_url(self, folder: Path) -> str:
        """A Connect warehouse of its own in ``folder`` (a copy of the template), as ``spark_warehouse_url``."""
        import shutil

        shutil.copytree(self.template, folder)
        return f"{self.url}?warehouse={folder}&partitions=2"


#: How long the Connect server may take to answer: a JVM, Spark and the gRPC service (about 17 s at load 3.8).
CONNECT_START_S = 240.0


@pytest.fixture(scope="session")
def spark_connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkConnect]:
    """A Spark Connect server on 127.0.0.1 for the test session: pyspark's own ``spark-submit`` running
    ``SparkConnectServer`` from the jars pyspark ships (``spark-connect_2.13``; nothing downloaded), local[2],
    1 GB, 2 shuffle partitions, Spark's in-memory catalog, UTC, a free port. The server writes the tables'
    files itself, so it and this process must see the warehouse directory at the same path (one machine
    here; shared storage on a cluster). Stopped (its process group) at the end of the session."""
    import gc
    import shutil
    import warnings

    import pyspark

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("Spark needs Java 17: scripts/test installs openjdk-17-jre-headless")
    folder = tmp_path_factory.mktemp("spark-connect")
    log, port = folder / "server.log", free_port()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    settings = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.ui.enabled": "false",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.pyspark.python": sys.executable,  # a Python UDF's workers, on the server
    }
    command = [
        "bash",
        str(Path(pyspark.__file__).parent / "bin" / "spark-submit"),
        *("--class", "org.apache.spark.sql.connect.service.SparkConnectServer", "--name", "touchpoint-tests"),
        *("--master", "local[2]", "--driver-memory", "1g"),
        *(part for key, value in settings.items() for part in ("--conf", f"{key}={value}")),
        "spark-internal",  # spark-submit's name for a class already on Spark's classpath (pyspark/jars)
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + CONNECT_START_S
        while "Spark Connect server started at" not in log.read_text(errors="replace"):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the Spark Connect server did not start:\n{tail}")
            time.sleep(0.3)
        connect = SparkConnect(f"sc://127.0.0.1:{port}", folder / "migrated", log)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # as spark_session: PySpark's result sockets
            Warehouse.open(f"{connect.url}?warehouse={connect.template}&partitions=2").close()
            gc.collect()
        yield connect
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(30)


ALL_ENGINES = (*ENGINES, "spark")


@pytest.fixture(params=ALL_ENGINES)
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """As ``warehouse_url``, and a Spark warehouse (Parquet tables in a temporary directory) too."""
    if request.param == "spark":
        return spark_warehouse_url(request.getfixturevalue("spark_session"), tmp_path / "spark-wh")
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'wh.duckdb'}"
    return str(request.getfixturevalue("postgres_url"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: How long a test waits for `touchpoint serve` to answer: a start took 75-85 s on the shared 2-core machine at
#: load 11 (about 3 s idle).
START_TIMEOUT_S = 180.0


@dataclass
class Server:
    """A real ``touchpoint serve`` process on 127.0.0.1."""

    data_dir: Path
    port: int
    write_key: str
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    cwd: Path | None = None  # the server's working directory (default: the test run's)
    jobs: bool | tuple[str, ...] = False  # run the jobs (True: all, as `touchpoint serve` does; or these only)
    env: dict[str, str] = field(default_factory=dict)  # TOUCHPOINT_* settings for it (e.g. TOUCHPOINT_WAREHOUSE_URL)
    _log_handle: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")} | self.env
        if isinstance(self.jobs, tuple):  # the others switched off, as `[jobs.NAME] enabled = false` would
            from touchpoint.jobs.definitions import JOBS

            unknown = set(self.jobs) - set(JOBS)
            assert not unknown, f"no such jobs: {unknown}"
            env["TOUCHPOINT_JOBS"] = json.dumps({name: {"enabled": False} for name in JOBS if name not in self.jobs})
        self.log = self.data_dir.parent / f"server-{self.port}.log"
        self._close_log()
        self._log_handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "touchpoint.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--data",
                str(self.data_dir),
                *([] if self.jobs else ["--no-jobs"]),
            ],
            env=env,
            cwd=self.cwd,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as poll:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self._close_log()
                    raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
                try:
                    if poll.get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.kill()  # no process or open log left behind for a later test to trip over
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log.read_text()}")

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush; what was acknowledged must already be durable."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._close_log()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def factory(env: dict[str, str] | None = None) -> Server:
        """A started server on a new data directory; ``env``: its TOUCHPOINT_* settings."""
        data = tmp_path / f"server-data-{len(servers)}"
        wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
        write_key = keys.create_source(wh, "test-source")
        wh.close()
        server = Server(data, free_port(), write_key, env=dict(env or {}))
        server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


def events_in(data_dir: Path) -> Warehouse:
    """Open a stopped server's warehouse read-only."""
    return Warehouse.open(f"duckdb://{data_dir / 'warehouse.duckdb'}", read_only=True)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``touchpoint ARGS`` in this process through the CLI's one error boundary: (exit code, stdout, stderr)."""
    from touchpoint.cli.main import main

    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
