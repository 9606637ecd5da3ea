"""The command-line interface: a thin Typer layer over the library; every command has ``--json``."""
