"""Files that hold data or key material are readable by their owner only.

New directories touchpoint makes for its data are created ``0700`` and files holding keys or the
warehouse ``0600``. Existing directories are never re-moded (``--data .`` must not lock the user out
of their own working directory); the files inside are.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> oct(private_dir(root / "data").stat().st_mode & 0o777)
'0o700'
>>> write_private(root / "data" / "keys.json", "{}")
>>> oct((root / "data" / "keys.json").stat().st_mode & 0o777)
'0o600'
"""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) as ``0700``; an existing directory is left as it is."""
    missing = []
    walk = path
    while not walk.exists() and walk != walk.parent:
        missing.append(walk)
        walk = walk.parent
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for made in missing:
        os.chmod(made, 0o700)  # mkdir's mode is masked by the umask; parents get umask defaults
    return path


def make_private(path: Path | str) -> None:
    """Make an existing file we own ``0600`` (the warehouse file, its WAL)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        os.chmod(p, 0o600)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, from the first byte on (no window at 0644)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            handle.write(text)
    finally:
        if fd != -1:
            os.close(fd)
