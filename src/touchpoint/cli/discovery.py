"""The discovery file: how a command finds the ``touchpoint serve`` that holds its data directory.

While it runs, the server keeps ``<data_dir>/server.json`` (mode 0600): its loopback URL, its PID, the
working directory it started in and a random token that only this file carries. A command reads it
(:func:`live_server`), checks that the PID is alive, and sends its command line to the server
(:mod:`touchpoint.cli.remote`). A file left by a server killed with ``kill -9`` names a dead PID and
is ignored and removed; one whose PID was reused by another program is ignored when nothing answers.

Everything here runs before any command does, so it uses the standard library only (no settings
object: the data directory is found the way the settings find it, :func:`data_dir_for`).

>>> import tempfile, pathlib, os
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = write(root, url="http://127.0.0.1:8000", token="t", cwd="/")
>>> live_server(root).pid == os.getpid()
True
>>> oct((root / FILE_NAME).stat().st_mode & 0o777)
'0o600'
>>> remove(root, "t"); live_server(root) is None
True
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "server.json"
DEFAULT_DATA_DIR = "touchpoint-data"  # touchpoint.config.Settings.data_dir (a test keeps them equal)


@dataclass(frozen=True)
class Discovery:
    """What a running server tells the commands of its data directory."""

    url: str  # loopback only: http://127.0.0.1:PORT or http://[::1]:PORT
    pid: int
    token: str  # random per server start; only the owner of the data directory can read it
    data_dir: str  # absolute
    cwd: str  # the server's working directory (relative paths on a command line resolve against it)

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / FILE_NAME


def resolve(path: str | Path) -> Path:
    """A data directory as the settings resolve it: ``~`` expanded, made absolute."""
    return Path(path).expanduser().absolute()


def data_dir_for(argv: list[str]) -> Path:
    """The data directory a command line would use: ``--data``, then ``$TOUCHPOINT_DATA_DIR``, then
    ``data_dir`` in the configuration file, then ``./touchpoint-data`` (the order of
    :class:`touchpoint.config.Settings`)."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    for i, arg in enumerate(options):
        if arg == "--data" and i + 1 < len(options):
            return resolve(options[i + 1])
        if arg.startswith("--data="):
            return resolve(arg.split("=", 1)[1])
    if os.environ.get("TOUCHPOINT_DATA_DIR"):
        return resolve(os.environ["TOUCHPOINT_DATA_DIR"])
    config = Path(os.environ.get("TOUCHPOINT_CONFIG", "touchpoint.toml"))
    if not config.is_file():
        return resolve(DEFAULT_DATA_DIR)
    import tomllib

    try:
        value = tomllib.loads(config.read_text(encoding="utf-8")).get("data_dir")
    except (OSError, ValueError):  # no file, or one the settings will report when a command loads them
        value = None
    return resolve(value if isinstance(value, str) and value else DEFAULT_DATA_DIR)


def write(data_dir: Path, *, url: str, token: str, cwd: str) -> Path:
    """Write the discovery file for this process (0600 from its first byte; replaced atomically)."""
    target = resolve(data_dir) / FILE_NAME
    entry = Discovery(url=url, pid=os.getpid(), token=token, data_dir=str(resolve(data_dir)), cwd=cwd)
    scratch = target.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps(asdict(entry)).encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(scratch, target)
    return target


def read(data_dir: Path) -> Discovery | None:
    """The discovery file of ``data_dir`` as written, or None (missing, unreadable, garbled, or not
    private to this user: a file others could write could send commands to a server of theirs)."""
    path = resolve(data_dir) / FILE_NAME
    try:
        st = path.stat()
        if st.st_mode & 0o077 or st.st_uid not in (os.getuid(), 0):
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Discovery(
            url=str(raw["url"]),
            pid=int(raw["pid"]),
            token=str(raw["token"]),
            data_dir=str(raw["data_dir"]),
            cwd=str(raw["cwd"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_server(data_dir: Path) -> Discovery | None:
    """The server holding ``data_dir``, or None. A file naming a dead PID is stale and removed."""
    found = read(data_dir)
    if found is None:
        return None
    if not pid_alive(found.pid):
        remove(data_dir, found.token)
        return None
    return found


def remove(data_dir: Path, token: str) -> None:
    """Remove the discovery file if it is still the one carrying ``token`` (never another server's)."""
    found = read(data_dir)
    if found is not None and found.token == token:
        (resolve(data_dir) / FILE_NAME).unlink(missing_ok=True)
