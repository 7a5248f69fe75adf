"""The participants' sheet: one printable, self-contained HTML page, a card per participant.

Each card has the workshop's addresses (the services people sign in to, the other web pages, the
gateway's OpenAI base URL), the participant's sign-in (e-mail or user name, password), their own
gateway key, and a QR code of the sign-in page (SVG, from ``segno``). The page holds passwords:
it is written 0600, and nothing of it is printed.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import segno

from ops import participants
from ops.errors import OpsError
from ops.plan import StackPlan
from ops.private import open_private, private_dir
from ops.services import PARTICIPANT_SIGN_IN
from ops.stack import participant_email
from ops.state import StackState

#: The gateway's name among the URLs (``plan.public_url`` takes it as a service name).
GATEWAY = "gateway"


def room_url(plan: StackPlan, service: str) -> str:
    """The URL the room uses for ``service`` (or :data:`GATEWAY`): the exposed https one, else this machine's."""
    return plan.public_url(service)


@dataclass(frozen=True)
class Link:
    """One address on a card: what it is, where, and how to sign in there."""

    label: str
    url: str
    login: str = ""


@dataclass(frozen=True)
class Card:
    """One participant's card (holds their secrets: render it, never print it)."""

    name: str
    links: tuple[Link, ...]
    password: str
    key: str
    qr_url: str


def cards(plan: StackPlan, state: StackState) -> list[Card]:
    """A card for every participant of the roster that has a password and a key."""
    accounts = {svc.name: svc.hook.sign_in_path for svc in participants.account_services(plan, state)}
    qr = next((room_url(plan, name) + path for name, path in accounts.items()), "")
    made = []
    for name in participants.roster(plan, state):
        password = state.secrets.get(participants.password_name(name))
        key = state.secrets.get(participants.key_name(name))
        if password is None or key is None:
            continue
        links = []
        for service, resolved in plan.enabled.items():
            url = room_url(plan, service)
            if not url:
                continue
            if service in accounts:
                login = participant_email(plan.name, name)
            elif PARTICIPANT_SIGN_IN in resolved.kind.features:
                login = name
            else:
                login = ""
            links.append(Link(service, url, login))
        links.append(Link("gateway (OpenAI API base URL)", room_url(plan, GATEWAY)))
        made.append(Card(name, tuple(links), password.reveal(), key.reveal(), qr or links[0].url))
    return made


def render(plan: StackPlan, made: list[Card]) -> str:
    """The whole page."""
    e = html.escape
    body = "\n".join(_card(plan, card) for card in made)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(plan.name)}: participants' sign-ins</title>
<style>
body {{ font: 11pt system-ui, sans-serif; margin: 1cm; color: #111; }}
.cards {{ display: grid; grid-template-columns: 1fr 1fr; gap: 0.6cm; }}
.card {{ border: 1px dashed #555; padding: 0.4cm; break-inside: avoid; page-break-inside: avoid; }}
.card h2 {{ margin: 0 0 0.2cm; font-size: 14pt; }}
.card .qr {{ float: right; margin: 0 0 0.2cm 0.2cm; text-align: center; font-size: 8pt; color: #555; }}
.card .password {{ font-size: 13pt; font-weight: 700; }}
.card dl {{ margin: 0; }} .card dt {{ font-weight: 600; margin-top: 0.15cm; }} .card dd {{ margin: 0; }}
code {{ font: 10pt ui-monospace, monospace; word-break: break-all; }}
.note {{ color: #555; font-size: 9pt; margin-top: 0.2cm; }}
@media print {{ body {{ margin: 0.5cm; }} }}
</style></head>
<body>
<h1>{e(plan.name)}: {len(made)} participant{"" if len(made) == 1 else "s"}</h1>
{_local_only(plan)}<div class="cards">
{body}
</div>
</body></html>
"""


def _local_only(plan: StackPlan) -> str:
    """A warning when the addresses are this machine's own: the room cannot reach them."""
    if plan.expose is not None:
        return ""
    return (
        '<p class="note">These addresses work on this machine only: `expose:` in the profile '
        "publishes the workshop to the room (then print this sheet again).</p>\n"
    )


def _card(plan: StackPlan, card: Card) -> str:
    e = html.escape
    qr = segno.make(card.qr_url, error="m").svg_inline(scale=3, title=f"sign in at {card.qr_url}")
    rows = []
    for link in card.links:
        login = f"<br>sign in as <code>{e(link.login)}</code>" if link.login else ""
        rows.append(f'<dt>{e(link.label)}</dt><dd><a href="{e(link.url)}">{e(link.url)}</a>{login}</dd>')
    return f"""<section class="card" id="card-{e(card.name)}">
<div class="qr">{qr}<br>scan to sign in</div>
<h2>{e(card.name)}</h2>
<dl>
{"".join(rows)}
<dt>Password</dt><dd><code class="password">{e(card.password)}</code></dd>
<dt>Gateway key (Authorization: Bearer ...)</dt><dd><code class="key">{e(card.key)}</code></dd>
</dl>
<p class="note">Keep this card to yourself: the password and the key are yours only.</p>
</section>"""


def write(plan: StackPlan, state: StackState, path: Path) -> int:
    """Write the sheet to ``path`` (0600, replacing it); returns the number of cards."""
    made = cards(plan, state)
    if not made:
        raise OpsError(
            f"stack {plan.name} has no participants with a password yet",
            hint=f"add `participants:` to the profile and run `ops up {plan.name}`, or `ops participants add`",
        )
    private_dir(path.parent)
    with os.fdopen(open_private(path, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as fh:
        fh.write(render(plan, made))
    return len(made)
