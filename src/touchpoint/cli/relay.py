"""Inside ``touchpoint serve``: run a client's command on the server's own warehouse.

:func:`attach` adds to the server's app one endpoint, ``POST /v1/cli/run``, and the discovery file
(:mod:`touchpoint.cli.discovery`) that lets commands find it. A request carries a command line; the
server runs it through the CLI's own entry point (:func:`touchpoint.cli.main.main`, so the same Typer
command, options, output and error boundary) on a worker thread, with a :class:`ServerSession` in
force: ``warehouse()`` yields the server's open warehouse, ``settings_for()`` the server's settings,
and the consoles, ``sys.stdout`` and ``sys.stderr`` write to that client's stream (a context variable
picks the stream per thread, so concurrent commands never mix). Frames of JSON lines stream back:
``{"out": text}``, ``{"err": text}``, and last ``{"exit": code}``.

Who may call it: a client on the loopback interface that presents the token of the discovery file,
which only the owner of the data directory can read (mode 0600). API keys are not accepted: a command
line can read and write files as the server's user, which the HTTP API never allows. Requests that
carry an ``Origin`` header (a browser), a proxy's forwarding headers, or a ``Host`` other than a loopback
name (DNS rebinding) are refused. Paths on the command line are read and written by the server, which
runs as the same user; a relative path is made absolute against the client's working directory when it
differs from the server's.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import ipaddress
import json
import os
import queue
import secrets
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO, cast

from fastapi import FastAPI, Request
from starlette.responses import StreamingResponse

from touchpoint.cli import discovery
from touchpoint.cli.common import ServerSession, server_session
from touchpoint.cli.remote import LOCAL_ONLY, RUN_PATH, command_name
from touchpoint.errors import Forbidden, InvalidInput, Unauthorized

if TYPE_CHECKING:
    from touchpoint.config import Settings

MAX_ARGV = 1_000
MAX_ARG_CHARS = 100_000
_END = object()


class _ClientStream(io.TextIOBase):
    """A text stream whose writes become frames for one client; ``isatty`` answers as the client's does."""

    def __init__(self, frames: queue.Queue[Any], name: str, tty: bool) -> None:
        self._frames, self._name, self._tty = frames, name, tty

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._frames.put((self._name, text))
        return len(text)

    def isatty(self) -> bool:
        return self._tty

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase declares it read-only
        return "utf-8"


class _Dispatch:
    """``sys.stdout``/``sys.stderr`` of the server: the client's stream inside a session, else the real one."""

    def __init__(self, original: Any, name: str) -> None:
        self._original, self._name = original, name

    def _target(self) -> Any:
        session = server_session.get()
        return getattr(session, self._name) if session is not None else self._original

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return bool(self._target().isatty())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)


def _install_dispatch() -> None:
    if not isinstance(sys.stdout, _Dispatch):
        sys.stdout = _Dispatch(sys.stdout, "stdout")
    if not isinstance(sys.stderr, _Dispatch):
        sys.stderr = _Dispatch(sys.stderr, "stderr")


def _loopback_url(host: str, port: int) -> str | None:
    """Where a local command reaches a server listening on ``host``; None when not on loopback."""
    if host in ("0.0.0.0", "", "localhost"):
        return f"http://127.0.0.1:{port}"
    if host == "::":
        return f"http://[::1]:{port}"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_loopback:
        return None
    return f"http://[{host}]:{port}" if address.version == 6 else f"http://{host}:{port}"


def _is_loopback(host: str | None) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _check_caller(request: Request, token: str) -> None:
    """Loopback, no browser, no proxy, a loopback Host, and the discovery file's token; else 401/403.

    (A reverse proxy on the same machine makes every request come from loopback, often with a loopback
    Host too; its forwarding headers give it away. The token is the guard that remains either way.)"""
    if not _is_loopback(request.client.host if request.client else None):
        raise Forbidden("the CLI endpoint answers on the loopback interface only", hint="run the command on the server")
    if request.headers.get("origin") is not None:
        raise Forbidden("the CLI endpoint does not answer browsers", hint="run the command with `touchpoint`")
    if any(request.headers.get(h) is not None for h in ("forwarded", "x-forwarded-for", "x-real-ip")):
        raise Forbidden("the CLI endpoint does not answer through a proxy", hint="run the command on the server")
    host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower()
    if host != "localhost" and not _is_loopback(host):
        raise Forbidden(f"the CLI endpoint does not answer for the host name {host!r}", hint="use 127.0.0.1")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized(
            "the CLI endpoint needs the token of the server's discovery file",
            hint="run the command with `touchpoint` as the user who owns the data directory",
        )


def _parse(raw: bytes, data_dir: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
        argv, cwd = body["argv"], body["cwd"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("the CLI request is not JSON with argv and cwd", hint="run it with `touchpoint`") from None
    if not (isinstance(argv, list) and all(isinstance(a, str) and len(a) <= MAX_ARG_CHARS for a in argv)):
        raise InvalidInput("argv must be a list of strings", hint="run it with `touchpoint`")
    if len(argv) > MAX_ARGV or not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise InvalidInput("the command line is too long, or cwd is not an absolute path", hint="shorten it")
    if os.path.realpath(str(body.get("data_dir"))) != os.path.realpath(data_dir):
        raise InvalidInput(
            f"this server holds {data_dir}, not {body.get('data_dir')}",
            hint="run the command with --data for this server's directory, or start a server for the other one",
        )
    command = command_name(argv)
    if command in LOCAL_ONLY:
        raise InvalidInput(
            f"`touchpoint {command}` cannot run inside the running server (PID {os.getpid()})",
            hint=f"stop that server first (`kill -TERM {os.getpid()}`), or use another --data directory",
        )
    return dict(body)


def _rich_terminal(env: dict[str, str], isatty: bool) -> bool:
    """Whether rich takes the client's stream for a terminal (rich's ``Console.is_terminal``)."""
    compatible = env.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    if env.get("FORCE_COLOR") is not None:
        return env["FORCE_COLOR"] != ""
    return isatty


def _rich_size(env: dict[str, str], size: list[int] | None, tty: bool) -> tuple[int, int]:
    """The size rich would give a console in the client's terminal (rich's ``Console.size``)."""
    if _rich_terminal(env, tty) and env.get("TERM", "").lower() in ("dumb", "unknown"):
        return 80, 25
    width, height = (size[0], size[1]) if size and len(size) == 2 else (None, None)
    if env.get("COLUMNS", "").isdigit():
        width = int(env["COLUMNS"])
    if env.get("LINES", "").isdigit():
        height = int(env["LINES"])
    return int(width or 80), int(height or 25)


def _session(body: dict[str, Any], state: Any, frames: queue.Queue[Any]) -> ServerSession:
    from rich.console import Console

    raw_env = body.get("env") or {}
    env = {str(k): str(v) for k, v in raw_env.items()} if isinstance(raw_env, dict) else {}
    size = body.get("size") if isinstance(body.get("size"), list) else None
    out = cast("TextIO", _ClientStream(frames, "out", bool(body.get("stdout_tty"))))
    err = cast("TextIO", _ClientStream(frames, "err", bool(body.get("stderr_tty"))))

    def console(stream: TextIO, stderr: bool) -> Console:
        width, height = _rich_size(env, size, stream.isatty())
        return Console(file=stream, stderr=stderr, soft_wrap=True, width=width, height=height, _environ=env)

    return ServerSession(
        warehouse=state.warehouse,
        settings=state.settings,
        stdout=out,
        stderr=err,
        console=console(out, False),
        err_console=console(err, True),
        runner=getattr(state, "runner", None),
    )


def _run(argv: list[str], cwd: str | None, body: dict[str, Any], state: Any, frames: queue.Queue[Any]) -> None:
    """The worker thread: the CLI's entry point with the client's session in force (``cwd``: the client's
    working directory when it is not the server's)."""
    from touchpoint.cli.main import main

    try:
        session = _session(body, state, frames)
    except BaseException:
        frames.put(("err", traceback.format_exc()))
        frames.put(("exit", 70))
        frames.put(_END)
        raise
    server_session.set(session)
    code = 0
    try:
        if cwd is not None:
            from touchpoint.cli.paths import absolute_paths

            argv = absolute_paths(argv, cwd)
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            session.stderr.write(exc.code + "\n")
    except BaseException:  # --debug lets the boundary re-raise: the traceback and exit 1, as Python gives
        session.stderr.write(traceback.format_exc())
        code = 1
    finally:
        frames.put(("exit", code))
        frames.put(_END)


def _frames(frames: queue.Queue[Any]) -> Iterator[bytes]:
    """JSON lines from the queue, in order; consecutive writes to one stream go out as one frame."""
    held: Any = None
    while True:
        item, held = (held if held is not None else frames.get()), None
        if item is _END:
            return
        name, value = item
        if name == "exit":
            yield (json.dumps({"exit": value}) + "\n").encode()
            continue
        parts = [value]
        while True:
            try:
                following = frames.get_nowait()
            except queue.Empty:
                break
            if following is not _END and following[0] == name:
                parts.append(following[1])
                continue
            held = following
            break
        yield (json.dumps({name: "".join(parts)}) + "\n").encode()


def attach(app: FastAPI, settings: Settings) -> None:
    """Serve the CLI endpoint on ``app`` and keep the discovery file while the app runs."""
    _install_dispatch()
    token = secrets.token_urlsafe(32)
    data_dir = discovery.resolve(settings.data_dir)
    url = _loopback_url(settings.host, settings.port)
    server_cwd = os.getcwd()

    async def run(request: Request) -> StreamingResponse:
        _check_caller(request, token)
        body = _parse(await request.body(), str(data_dir))
        argv = list(body["argv"])
        cwd = body["cwd"] if body["cwd"] != server_cwd else None
        frames: queue.Queue[Any] = queue.Queue()
        state = request.app.state.touchpoint
        args = (argv, cwd, body, state, frames)
        worker = threading.Thread(target=_run, args=args, name="touchpoint-cli", daemon=True)
        worker.start()
        return StreamingResponse(_frames(frames), media_type="application/x-ndjson")

    app.add_api_route(RUN_PATH, run, methods=["POST"], include_in_schema=False)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            written = url is not None
            if written:
                discovery.write(data_dir, url=str(url), token=token, cwd=server_cwd)
            try:
                yield state
            finally:
                if written:
                    with contextlib.suppress(OSError):
                        discovery.remove(data_dir, token)

    app.router.lifespan_context = lifespan
