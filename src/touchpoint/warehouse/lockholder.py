"""Who holds the warehouse file's lock: checked, not guessed, so the error says what to do.

DuckDB's lock error names a PID. It is checked against the kernel's lock table (``/proc/locks``, on
Linux) and described from its command line (``/proc/PID/cmdline``): a running ``touchpoint serve`` is
told apart from another ``touchpoint import`` or any other program, and the hint fits the holder.
Where ``/proc`` is missing the PID from the message is reported as DuckDB gave it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    argv: tuple[str, ...]  # the holder's command line, when it could be read
    confirmed: bool  # the kernel's lock table shows this PID holding the file

    def describe(self) -> str:
        if self.pid is None:
            return "another process"
        if self.pid == os.getpid():
            return f"this process (PID {self.pid})"
        what = f"`{self.short_command()}`" if self.argv else "a process"
        return f"{what} (PID {self.pid})"

    def short_command(self) -> str:
        """The command line, shortened: ``touchpoint import events x.jsonl``, or ``python3 -c import… --flag``."""
        argv = list(self.argv)
        for i, arg in enumerate(argv):  # python -m touchpoint.cli.main serve ... or .../bin/touchpoint serve ...
            if arg.endswith(("touchpoint", "touchpoint.cli.main")):
                argv = ["touchpoint", *argv[i + 1 :]]
                break
        else:
            argv = [os.path.basename(argv[0]), *argv[1:]] if argv else []
        shown = " ".join(a if len(a) <= 40 else a[:39] + "…" for a in argv)
        return shown if len(shown) <= 240 else shown[:239] + "…"

    def hint(self) -> str:
        if self.pid is not None and self.pid == os.getpid():
            return "this process already has the warehouse open; close it first"
        short = self.short_command()
        if short.startswith("touchpoint serve"):
            return (
                "a running `touchpoint serve` holds it: `touchpoint` commands run through it; "
                "from other programs use its HTTP API, or stop it"
            )
        if short.startswith("touchpoint demo"):  # the demo loads, then serves until stopped
            return (
                "`touchpoint demo` holds it (it serves once loaded): `touchpoint` commands run through it "
                "once it serves; from other programs use its HTTP API, or stop it"
            )
        if short.startswith("touchpoint"):
            return "another touchpoint command is writing; wait for it to finish, then run this again"
        if self.pid is not None:
            return f"process {self.pid} has the file open; close it (or stop that process), then run this again"
        return "another program has the file open; close it, then run this again"


def _locking_pids(path: str) -> set[int] | None:
    """PIDs the kernel lists as holding a lock on ``path``; None where that cannot be read."""
    try:
        st = os.stat(path)
        table = (PROC / "locks").read_text()
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    pids = set()
    for line in table.splitlines():
        found = re.search(r"\s(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s", line)
        if found and (int(found.group(2), 16), int(found.group(3), 16), int(found.group(4))) == want:
            pids.add(int(found.group(1)))
    return pids


def _argv(pid: int) -> tuple[str, ...]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)


def lock_holder(path: str, message: str) -> LockHolder:
    """The process holding ``path``, from DuckDB's lock ``message`` checked against the lock table."""
    named = re.search(r"PID (\d+)", message)
    pid = int(named.group(1)) if named else None
    holders = _locking_pids(path)
    confirmed = bool(holders) and pid in (holders or set())
    if holders and not confirmed:
        pid = min(holders)  # the message named another process (e.g. across PID namespaces): trust the kernel
        confirmed = True
    return LockHolder(pid, _argv(pid) if pid is not None else (), confirmed)


def flock_holder(path: str) -> LockHolder:
    """The process holding a ``flock`` on ``path`` (our own lock files), from the kernel's lock table."""
    holders = _locking_pids(path)
    pid = min(holders) if holders else None
    return LockHolder(pid, _argv(pid) if pid is not None else (), bool(holders))
