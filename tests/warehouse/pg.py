"""A throwaway PostgreSQL server for the tests: Debian's binaries, initdb in a temporary directory.

One server per test session (per pytest-xdist worker), on a free port of 127.0.0.1 with its socket in
its own directory; each test takes a database of its own (:meth:`PostgresServer.new_database`), so
tests never see each other's rows (a copy of a database migrated once per session: see
``new_database``). Durability is switched off (``fsync``, ``synchronous_commit``,
``full_page_writes``): a crash of the test machine loses nothing anyone needs, and commits are then
as cheap as the embedded engine's. PostgreSQL refuses to run as root, so under root the server runs
as ``nobody`` (any unprivileged account: ``TOUCHPOINT_TEST_PG_USER``).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "touchpoint"
TEMPLATE = "tp_migrated"


def find_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``: TOUCHPOINT_TEST_PG_BIN, the PATH, or Debian's
    ``/usr/lib/postgresql/<version>/bin`` (the newest)."""
    if configured := os.environ.get("TOUCHPOINT_TEST_PG_BIN"):
        return Path(configured)
    if on_path := shutil.which("initdb"):
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running ``postgres`` process; :meth:`start` makes one, :meth:`stop` ends it and removes its files."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def start(cls) -> PostgresServer:
        bin_dir = find_binaries()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL's server binaries are not installed: scripts/test installs Debian's `postgresql` "
                "package (or set TOUCHPOINT_TEST_PG_BIN to the directory holding initdb)"
            )
        run_as: dict[str, object] = {}
        root = Path(tempfile.mkdtemp(prefix="tp-pg-"))  # in /tmp: the unprivileged user must reach it
        if os.geteuid() == 0:  # initdb and postgres refuse root
            account = pwd.getpwnam(os.environ.get("TOUCHPOINT_TEST_PG_USER", "nobody"))
            os.chown(root, account.pw_uid, account.pw_gid)
            run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        data = root / "data"
        subprocess.run(
            [bin_dir / "initdb", "-D", data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True,
            capture_output=True,
            **run_as,  # type: ignore[call-overload]
        )
        for _ in range(5):  # a free port can be taken between choosing it and binding it: try another
            port = _free_port()
            log = (root / "server.log").open("ab")
            settings = {
                "listen_addresses": "127.0.0.1",
                "port": str(port),
                "unix_socket_directories": str(root),
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "max_connections": "300",
                "shared_buffers": "64MB",
                "log_min_messages": "warning",
            }
            args = [str(bin_dir / "postgres"), "-D", str(data)]
            for name, value in settings.items():
                args += ["-c", f"{name}={value}"]
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **run_as)  # type: ignore[call-overload]
            log.close()
            server = cls(root, port, process)
            if server._wait_ready():
                server._make_template()
                return server
            server.stop(remove=False)
        text = (root / "server.log").read_text(errors="replace")
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start:\n{text[-3000:]}")

    def _wait_ready(self, timeout: float = 60.0) -> bool:
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        return False

    def _make_template(self) -> None:
        """A migrated database each test's database is copied from (a copy takes a tenth of a migration)."""
        import psycopg

        from touchpoint.warehouse import Warehouse

        with psycopg.connect(self.url("postgres"), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{TEMPLATE}"')
        Warehouse.open(self.url(TEMPLATE)).close()

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t", *, migrated: bool = True) -> str:
        """Create a database and return its URL: a copy of one migrated at the start of the session (opening
        it migrates nothing), or with ``migrated=False`` an empty one."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._ids)}"
        template = TEMPLATE if migrated else "template1"
        with psycopg.connect(self.url("postgres"), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`new_database` (connections still open to it are ended)."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url("postgres"), autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self, *, remove: bool = True) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: end sessions, no checkpoint wait
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if remove:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.root)
