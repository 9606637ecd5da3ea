"""The server starts without the statistics libraries: they are imported where a fit or an interval uses them,
so a server at rest holds about 50 MB less (its room under ``memory_ceiling_mb`` for requests)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy.stats", "scipy.optimize", "scipy.sparse", "sklearn", "jax", "numpyro", "pyspark")

PROBE = """
import json, sys
from touchpoint.api.app import create_app
create_app()
print(json.dumps(sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)))
"""


def test_the_server_app_loads_no_statistics_library(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TOUCHPOINT_DATA_DIR": str(tmp_path / "data"), "TOUCHPOINT_RUN_JOBS": "false"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
