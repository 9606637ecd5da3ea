"""A command run through the ``touchpoint serve`` that holds its data directory.

DuckDB lets one process write a database file, and a running server holds it. So before a command
runs, :func:`run_if_served` looks for the server's discovery file (:mod:`touchpoint.cli.discovery`);
when a live server holds the command's data directory, the command line is sent to the server's
loopback CLI endpoint with the discovery file's token, the server runs the very same command on its
own open warehouse (:mod:`touchpoint.cli.relay`), and its stdout, stderr and exit code stream back
and are printed here as they come. With no server, commands open the warehouse themselves.

The client is the standard library only (``http.client``, ``json``): its overhead is one local HTTP
request, not an import of the server's stack. ``--help``, ``--version`` and the bare ``touchpoint``
never leave this process; ``serve`` and ``demo`` cannot run through a server and say which server to
stop.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from touchpoint.cli import discovery
from touchpoint.errors import ERRORS, TouchpointError, WarehouseError, WarehouseLocked

if TYPE_CHECKING:
    import http.client

RUN_PATH = "/v1/cli/run"
#: Commands that start a server of their own: never sent to the running one.
LOCAL_ONLY = frozenset({"serve", "demo"})
#: Environment variables that change how rich renders (a command prints as it would in this terminal).
TERMINAL_ENV = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")
STARTING_GRACE_S = 1.5  # a live server's file is written just before its socket listens


def _options(argv: list[str]) -> list[str]:
    return argv[: argv.index("--")] if "--" in argv else argv


def command_name(argv: list[str]) -> str | None:
    """The top-level command of a command line (the root's options are flags only)."""
    return next((a for a in argv if not a.startswith("-")), None)


def stays_local(argv: list[str]) -> bool:
    """Help, the version and a bare ``touchpoint`` read no data: they never go to a server."""
    options = _options(argv)
    return command_name(argv) is None or "--help" in options or "--version" in options


def run_if_served(argv: list[str]) -> int | None:
    """Run ``argv`` through the server holding its data directory and return the exit code; None when
    no server holds it (the command runs here). ``serve``/``demo`` beside a running server are refused."""
    from touchpoint.cli.common import server_session

    if server_session.get() is not None or stays_local(argv):
        return None  # inside the server already, or nothing to send
    data_dir = discovery.data_dir_for(argv)
    found = discovery.live_server(data_dir)
    if found is None:
        return None
    try:
        command = command_name(argv)
        if command in LOCAL_ONLY:
            raise WarehouseLocked(
                f"`touchpoint serve` (PID {found.pid}, {found.url}) is running on {data_dir}; "
                f"`touchpoint {command}` cannot run beside it",
                hint=f"stop that server first (Ctrl-C where it runs, or `kill -TERM {found.pid}`), "
                "or give this command another --data directory",
            )
        return _send(found, argv, data_dir)
    except TouchpointError:
        if "--json" in _options(argv):
            from touchpoint.cli.common import json_output

            json_output.set(True)  # the command was not parsed here: the error boundary learns it now
        raise


def _terminal() -> dict[str, Any]:
    """What rich needs to render exactly as it would here: which streams are terminals, the size, the env."""
    size = None
    for fd in (0, 1, 2):  # rich's order
        try:
            size = list(os.get_terminal_size(fd))
        except (OSError, ValueError):
            continue
        break

    def tty(stream: Any) -> bool:
        try:
            return bool(stream.isatty())
        except (AttributeError, ValueError):
            return False

    return {
        "stdout_tty": tty(sys.stdout),
        "stderr_tty": tty(sys.stderr),
        "size": size,
        "env": {k: os.environ[k] for k in TERMINAL_ENV if k in os.environ},
    }


def _connect(found: discovery.Discovery) -> http.client.HTTPConnection | None:
    """A connection to the server, or None when nothing listens (a PID reused after ``kill -9``)."""
    import http.client  # here, not at the top: `touchpoint --help` never needs it
    from urllib.parse import urlsplit

    parts = urlsplit(found.url)
    deadline = time.monotonic() + STARTING_GRACE_S
    while True:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5)
        try:
            conn.connect()
        except ConnectionRefusedError:
            conn.close()
            if time.monotonic() > deadline or not discovery.pid_alive(found.pid):
                return None
            time.sleep(0.05)
            continue
        except OSError as exc:
            conn.close()
            raise WarehouseError(
                f"cannot reach the server at {found.url} (PID {found.pid}): {exc}",
                hint=f"check that server, or stop it (`kill -TERM {found.pid}`) to run commands directly",
            ) from None
        if conn.sock is not None:
            conn.sock.settimeout(None)  # a command may run for minutes (an MMM fit): wait for it
        return conn


def _send(found: discovery.Discovery, argv: list[str], data_dir: Path) -> int | None:
    import http.client

    conn = _connect(found)
    if conn is None:
        return None  # stale: run here (and meet the lock error if something else holds the file)
    body = {"argv": argv, "cwd": os.getcwd(), "data_dir": str(data_dir), **_terminal()}
    headers = {"Authorization": f"Bearer {found.token}", "Content-Type": "application/json"}
    try:
        conn.request("POST", RUN_PATH, body=json.dumps(body).encode("utf-8"), headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise _refused(found, response.status, response.read())
        return _relay(response, found)
    except (http.client.HTTPException, OSError) as exc:
        raise WarehouseError(
            f"the connection to the server at {found.url} (PID {found.pid}) broke: {exc}",
            hint="the command may have finished on the server; check its result before running it again",
        ) from None
    finally:
        conn.close()


def _relay(response: http.client.HTTPResponse, found: discovery.Discovery) -> int:
    """Print the server's frames as they arrive; the last one carries the exit code."""
    out, err = sys.stdout, sys.stderr
    for line in response:
        frame = json.loads(line)
        if "out" in frame:
            out.write(frame["out"])
            out.flush()
        elif "err" in frame:
            err.write(frame["err"])
            err.flush()
        elif "exit" in frame:
            return int(frame["exit"])
    raise WarehouseError(
        f"the server at {found.url} (PID {found.pid}) stopped before the command finished",
        hint="the command may have been cut short; check its result, then run it again",
    )


def _refused(found: discovery.Discovery, status: int, raw: bytes) -> TouchpointError:
    """The server's JSON error as the error it names (printed by the CLI's one error boundary)."""
    try:
        error = json.loads(raw)["error"]
        cls = ERRORS.get(str(error["code"]), TouchpointError)
        message, hint = str(error["message"]), error.get("hint")
    except (ValueError, KeyError, TypeError):
        cls, message, hint = TouchpointError, raw[:200].decode("utf-8", "replace"), None
    if status == 401:
        hint = f"the discovery file {found.path} does not match the server; restart the server (PID {found.pid})"
    exc = cls.__new__(cls)
    TouchpointError.__init__(exc, f"the server at {found.url} refused the command: {message}", hint=hint)
    return exc
