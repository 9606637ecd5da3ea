"""``touchpoint --help`` stays fast: asking for help loads none of the heavy libraries.

Timing a start-up in a test would be flaky (bench/cli_start.py times it); what makes it slow is
deterministic: a module-level import of a heavy library somewhere under ``touchpoint.cli``. So a fresh
interpreter imports the CLI, asks every group and every command for ``--help`` (and the root for
``--version``) through the real entry point, and reports which heavy modules were loaded. A command
imports its library inside its body (docs/cli.md, "Start-up time").
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

#: Each of these costs from a tenth of a second (pydantic) to seconds (the MMM stack) to import.
HEAVY = (
    "ibis",
    "duckdb",
    "pyarrow",
    "scipy",
    "numpy",
    "pandas",
    "sklearn",
    "jax",
    "numpyro",
    "matplotlib",
    "fastapi",
    "uvicorn",
    "starlette",
    "pydantic",
    "pydantic_settings",
)

PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys

    heavy = json.loads(sys.argv[1])

    def loaded():
        return sorted(h for h in heavy if h in sys.modules)

    out = {"import touchpoint": None}
    import touchpoint
    out["import touchpoint"] = loaded()

    import typer.main
    from touchpoint.cli.main import app, main

    def walk(command, path):
        yield path
        for name, child in sorted((getattr(command, "commands", None) or {}).items()):
            yield from walk(child, [*path, name])

    runs = [["--version"]] + [[*path, "--help"] for path in walk(typer.main.get_command(app), [])]
    for argv in runs:
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code
            else:
                code = 0
        out[" ".join(["touchpoint", *argv])] = {"exit": code, "shown": len(shown.getvalue()), "loaded": loaded()}

    # the probe sees a heavy import when there is one: import a library module afterwards
    import touchpoint.predict.summary
    out["control: import touchpoint.predict.summary"] = loaded()
    print(json.dumps(out))
    """
)


def _probe() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY)], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_help_and_version_load_no_heavy_library() -> None:
    result = _probe()
    assert result.pop("import touchpoint") == []
    control = result.pop("control: import touchpoint.predict.summary")
    assert isinstance(control, list) and {"ibis", "pyarrow", "numpy"} <= set(control)

    runs = {argv: run for argv, run in result.items() if isinstance(run, dict)}
    assert len(runs) > 40  # the root, every group and every command
    assert {"touchpoint --help", "touchpoint predict --help", "touchpoint mmm fit --help"} <= set(runs)
    answered = {argv: (run["exit"], run["shown"] > 0) for argv, run in runs.items()}
    assert set(answered.values()) == {(0, True)}, answered
    heavy = {argv: run["loaded"] for argv, run in runs.items() if run["loaded"]}
    assert heavy == {}, f"move these imports into the command that uses them: {heavy}"


def test_mmm_fit_shows_the_model_configs_defaults() -> None:
    """`mmm fit` writes the sampler's defaults out (importing MMMConfig would load numpy); they must agree."""
    import typer.main

    from touchpoint.cli.main import app
    from touchpoint.mmm.config import MMMConfig

    fit = typer.main.get_command(app).commands["mmm"].commands["fit"]  # type: ignore[attr-defined]
    shown = {p.name: p.default for p in fit.params if p.name in {"draws", "warmup", "chains", "holdout_weeks"}}
    config = MMMConfig()
    assert shown == {name: getattr(config, name) for name in shown} and len(shown) == 4


LISTING = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from touchpoint.cli.main import main

    out = {}
    for argv in json.loads(sys.argv[1]):
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main([*argv, "--data", sys.argv[2]])
            except SystemExit as exc:
                assert not exc.code, (argv, exc.code)
        out[" ".join(argv)] = "scipy" in sys.modules
    print(json.dumps(out))
    """
)


def test_listing_automations_audiences_experiments_and_scores_loads_no_scipy(tmp_path: Path) -> None:
    """scipy.stats alone takes about 0.7 s to import: an automation's delivery imports experiments' hashing, which
    must not bring the experiments' statistics with it (they import scipy where they use it)."""
    commands = [["automations", "list"], ["audiences", "list"], ["experiment", "list"], ["scores", "list"]]
    done = subprocess.run(
        [sys.executable, "-c", LISTING, json.dumps(commands), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {" ".join(c): False for c in commands}
