"""``touchpoint privacy consent show|set`` (docs/privacy.md)."""

from __future__ import annotations

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, console, emit, table, warehouse

app = typer.Typer(help="Privacy: consent per purpose.", no_args_is_help=True)
consent_app = typer.Typer(help="A person's consent per purpose: show it, record it.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")


@consent_app.command("show")
def show(
    identifier: str = typer.Argument(..., help="Any identifier of the person, or their profile id."),
    id_type: str = typer.Option(None, "--type", help="Only match this identifier type (e.g. email)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a person's consent per purpose now (stated or by default) and its history."""
    from touchpoint.privacy import consent

    with warehouse(data) as wh:
        out = consent.show(wh, identifier, id_type=id_type)

    def render() -> None:
        table(
            f"consent of {out['profile_id']}",
            ["purpose", "granted", "how", "since"],
            [
                (p["purpose"], "yes" if p["granted"] else "no", "stated" if p["stated"] else p["default"], p["since"])
                for p in out["purposes"]
            ],
        )
        for h in out["history"]:
            word = "granted" if h["granted"] else "denied"
            until = f" until {h['valid_until']}" if h["valid_until"] else ""
            console.print(f"  {h['valid_from']}{until}  {h['purpose']} {word} ({h['source']}, proof {h['proof']})")

    emit(out, as_json, render)


@consent_app.command("set")
def set_(
    identifier: str = typer.Argument(..., help="Any identifier of the person, or their profile id."),
    purpose: str = typer.Argument(..., help="The purpose (see `touchpoint privacy consent show`)."),
    decision: str = typer.Argument(..., help="granted or denied."),
    id_type: str = typer.Option(None, "--type", help="Only match this identifier type (e.g. email)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that a person granted or denied a purpose (source: cli)."""
    from touchpoint.errors import InvalidInput
    from touchpoint.privacy import consent

    if decision not in ("granted", "denied"):
        raise InvalidInput(f"decision: {decision!r} is not granted or denied", hint="write granted or denied")
    with warehouse(data) as wh:
        out = consent.set_consent(
            wh, identifier, [purpose], decision == "granted", source="cli", actor="cli", id_type=id_type
        )
    emit(out, as_json, lambda: console.print(f"{out['profile_id']}: {purpose} {decision}"))
