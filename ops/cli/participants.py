"""``ops participants list|add|remove|reset|sheet``: a workshop's participants and their sign-ins."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ops import participants, sheet
from ops import plan as stack_plan
from ops.cli import app, output
from ops.errors import ExitCode
from ops.state import StackState

participants_app = typer.Typer(
    help="The workshop's participants: their accounts, passwords and gateway keys, and a printable sheet.",
    no_args_is_help=True,
)
app.add_typer(participants_app, name="participants")


def _load(profile: str):
    plan = stack_plan.load(profile, ask_catalog=False)
    return plan, StackState.for_stack(plan.name).ensure()


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


@participants_app.command("list")
def list_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every participant: their account in each service and whether they hold a key (never the secrets)."""
    plan, state = _load(profile)
    people = participants.listing(plan, state)
    if json_:
        output.emit_json({"stack": plan.name, "participants": people})
        return
    if not people:
        output.line(
            f"stack {plan.name} has no participants (`participants:` in the profile, or `ops participants add`)"
        )
        return
    services = list(people[0].accounts)
    table = Table(box=None, pad_edge=False)
    for column in ("participant", *(f"{s} account" for s in services), "gateway key", "password", "from"):
        table.add_column(column)
    for p in people:
        table.add_row(
            p.name,
            *(_yes_no(p.accounts[s]) for s in services),
            _yes_no(p.key),
            _yes_no(p.password),
            "profile" if p.in_profile else "added",
        )
    output.out.print(table)
    if any(v is None for p in people for v in p.accounts.values()):
        output.note(f"? : the service does not answer (`ops up {plan.name}` starts it)")


@participants_app.command("add")
def add_command(
    profile: str = typer.Argument(..., help="Profile name or path."),
    names: list[str] = typer.Argument(..., help="The new participants' names."),
) -> None:
    """Add participants: a password, a gateway key and their accounts (the stack must be up)."""
    plan, state = _load(profile)
    new = participants.add(plan, state, names)
    for name in names:
        output.line(f"{name}: {'added' if name in new else 'already a participant; accounts checked'}")
    output.line(f"`ops participants sheet {profile}` writes their cards")


@participants_app.command("remove")
def remove_command(
    profile: str = typer.Argument(..., help="Profile name or path."),
    names: list[str] = typer.Argument(..., help="The participants to remove."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask first."),
) -> None:
    """Remove participants everywhere at once: accounts (with their chats), password, gateway key."""
    plan, state = _load(profile)
    for name in names:
        participants.check_name(name)
    if not yes and not typer.confirm(
        f"Remove {', '.join(names)} from {plan.name}: delete their accounts and chats, password and key?",
        default=False,
    ):
        output.note("nothing removed")
        raise typer.Exit(ExitCode.FAILURE)
    for name in participants.remove(plan, state, names):
        output.line(f"{name}: removed (accounts deleted, password and gateway key revoked)")


@participants_app.command("reset")
def reset_command(
    profile: str = typer.Argument(..., help="Profile name or path."),
    name: str = typer.Argument(..., help="The participant."),
    key: bool = typer.Option(
        False, "--key", help="Also give them a new gateway key (the old one is refused)."
    ),
) -> None:
    """Give a participant a new password (pushed to their accounts), and a new key with --key."""
    plan, state = _load(profile)
    participants.check_name(name)
    renewed = participants.reset(plan, state, name, key)
    output.line(f"{name}: new {' and '.join(renewed)}; `ops participants sheet {profile}` prints their card")


@participants_app.command("sheet")
def sheet_command(
    profile: str = typer.Argument(..., help="Profile name or path."),
    out: Path = typer.Option(
        None, "--output", "-o", help="Where to write the page; default PROFILE-participants.html."
    ),
) -> None:
    """Write a printable page, one card per participant (URLs, sign-in, password, key, QR code), 0600."""
    plan, state = _load(profile)
    path = out or Path(f"{plan.name}-participants.html")
    count = sheet.write(plan, state, path)
    output.line(f"wrote {count} cards to {path.resolve()} (mode 0600: it holds their passwords and keys)")
