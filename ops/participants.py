"""A workshop's participants: who they are, their secrets, and their accounts in the stack's services.

The roster of a stack is the profile's ``participants:`` plus the names ``ops participants add``
added, minus those it removed (a removed profile participant stays removed until added again);
the changes are kept in ``participants.json`` (0600) in the stack's state folder. Each participant
has a password (``participant-password:<name>``: readable, for a printed card) and a gateway key of
their own (``participant-key:<name>``) in the stack's secrets store, and an account in every service
whose kind has the ``accounts`` hook (Open WebUI), signing in with :func:`ops.stack.participant_email`.
The Chainlit app signs participants in by asking the gateway, which reads the same store.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as _random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ops.errors import OpsError, UsageError
from ops.locks import file_lock
from ops.plan import StackPlan
from ops.private import open_private, private_dir
from ops.profiles.classroom import NAME_HINT, PARTICIPANT_NAME
from ops.secrets import Secret, token
from ops.services import Account, Accounts, StackContext
from ops.stack import GATEWAY_KEY, PARTICIPANT_KEY_PREFIX, PARTICIPANT_PASSWORD_PREFIX, participant_email
from ops.state import StackState

Say = Callable[[str], None]
#: Passwords go on a printed card: no characters that read alike (0/O, 1/l/I).
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_password() -> str:
    """A readable password: 12 characters from :data:`PASSWORD_ALPHABET` in groups of 4 (about 59 bits)."""
    chars = "".join(_random.choice(PASSWORD_ALPHABET) for _ in range(12))
    return "-".join(chars[i : i + 4] for i in range(0, 12, 4))


def key_name(name: str) -> str:
    """The secret name of a participant's gateway key."""
    return PARTICIPANT_KEY_PREFIX + name


def password_name(name: str) -> str:
    """The secret name of a participant's password."""
    return PARTICIPANT_PASSWORD_PREFIX + name


def check_name(name: str) -> str:
    """``name`` if it can be a participant's name, else a :class:`UsageError`."""
    if not PARTICIPANT_NAME.match(name):
        raise UsageError(f"invalid participant name {name!r}", hint=f"use {NAME_HINT}")
    return name


# --- the roster -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """What ``ops participants add`` and ``remove`` changed against the profile's roster."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def roster(self, profile: Iterable[str]) -> tuple[str, ...]:
        """The profile's names minus the removed ones, then the added ones, each once, in order."""
        listed = tuple(profile)
        names = [n for n in listed if n not in self.removed]
        names += [n for n in self.added if n not in listed and n not in self.removed]
        return tuple(dict.fromkeys(names))

    def add(self, name: str) -> Changes:
        """These changes with ``name`` taking part."""
        return Changes(tuple(dict.fromkeys((*self.added, name))), tuple(n for n in self.removed if n != name))

    def remove(self, name: str) -> Changes:
        """These changes with ``name`` no longer taking part."""
        return Changes(tuple(n for n in self.added if n != name), tuple(dict.fromkeys((*self.removed, name))))


class ChangesFile:
    """``participants.json`` in the stack's state folder (0600), under a file lock."""

    def __init__(self, state: StackState):
        self.path = state.root / "participants.json"

    def read(self) -> Changes:
        """The stored changes (none when the file is missing)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Changes()
        except (OSError, ValueError):
            raise OpsError(
                f"cannot read {self.path}",
                hint="move it away: the roster is then the profile's participants again",
            ) from None
        return Changes(tuple(data.get("added") or ()), tuple(data.get("removed") or ()))

    def update(self, change: Callable[[Changes], Changes]) -> Changes:
        """Apply ``change`` to the stored changes and store the result (atomically); return it."""
        with file_lock(self.path.with_suffix(".lock")):
            changed = change(self.read())
            private_dir(self.path.parent)
            tmp = self.path.with_suffix(".tmp")
            with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as fh:
                json.dump({"added": list(changed.added), "removed": list(changed.removed)}, fh, indent=2)
            os.replace(tmp, self.path)
        return changed


def profile_roster(plan: StackPlan) -> tuple[str, ...]:
    """The participants the profile names."""
    spec = plan.loaded.profile.participants
    return spec.roster if spec is not None else ()


def roster(plan: StackPlan, state: StackState) -> tuple[str, ...]:
    """Every participant of the stack now: the profile's, plus those added, minus those removed."""
    return ChangesFile(state).read().roster(profile_roster(plan))


def with_secrets(state: StackState) -> set[str]:
    """The names that hold a key or a password in the secrets store."""
    names = set()
    for prefix in (PARTICIPANT_KEY_PREFIX, PARTICIPANT_PASSWORD_PREFIX):
        names |= {n.removeprefix(prefix) for n in state.secrets.with_prefix(prefix)}
    return names


def ensure(plan: StackPlan, state: StackState) -> tuple[str, ...]:
    """Give every participant of the roster a password and a gateway key (made once, then kept); the roster."""
    names = roster(plan, state)
    for name in names:
        state.secrets.get_or_create(password_name(name), new_password)
        state.secrets.get_or_create(key_name(name), token)
    return names


def forget(state: StackState, name: str) -> list[str]:
    """Delete ``name``'s key and password: the gateway and the Chainlit app refuse them from the next request."""
    return state.secrets.delete(key_name(name), password_name(name))


# --- accounts in the services -----------------------------------------------------------------


@dataclass(frozen=True)
class AccountService:
    """A service of the plan whose kind makes people's accounts, with what its hook needs."""

    name: str
    url: str
    hook: Accounts
    ctx: StackContext


def account_services(plan: StackPlan, state: StackState) -> list[AccountService]:
    """The enabled services whose kind has the ``accounts`` hook (and a URL on this machine)."""
    found = []
    for name, service in plan.enabled.items():
        if service.kind.accounts is not None and service.url:
            ctx = plan.wiring(state.secrets, state.secrets.get_or_create(GATEWAY_KEY)).for_service(name)
            found.append(AccountService(name, service.url, service.kind.accounts, ctx))
    return found


def require_answering(services: list[AccountService], plan: StackPlan) -> None:
    """Raise (before anything changes) when one of ``services`` does not answer."""
    for svc in services:
        if not svc.hook.answers(svc.url):
            raise OpsError(
                f"{svc.name} does not answer at {svc.url}: participants' accounts cannot be changed now",
                hint=f"start the stack with `ops up {plan.name}`, then run this again",
            )


def _account(state: StackState, name: str) -> Account:
    password = state.secrets.get(password_name(name))
    assert password is not None  # ensure() made it
    return Account(name, participant_email(state.name, name), password)


def _ours(state: StackState, email: str) -> str | None:
    """The participant an e-mail belongs to, if it is one of this stack's participants' e-mails."""
    local, _, domain = email.partition("@")
    return local if email == participant_email(state.name, local) and domain else None


@dataclass(frozen=True)
class Reconciled:
    """What :func:`reconcile` did: the roster, accounts made and deleted per service, how long it took."""

    roster: tuple[str, ...]
    created: dict[str, int]
    deleted: dict[str, int]
    forgotten: tuple[str, ...]
    seconds: float


def reconcile(plan: StackPlan, state: StackState, say: Say = lambda _: None) -> Reconciled | None:
    """Make the stack's participants exist everywhere and nobody else (after ``ops up``).

    Secrets are made for the roster, and taken from names no longer in it; each accounts service
    gets an account for every participant and loses those of this stack's participants no longer
    in the roster. ``None`` when the stack has no participants and never had any.
    """
    started = time.monotonic()
    names = ensure(plan, state)
    stale = tuple(sorted(with_secrets(state) - set(names)))
    if not names and not stale:
        return None
    services = account_services(plan, state)
    created: dict[str, int] = {}
    deleted: dict[str, int] = {}
    for svc in services:
        existing = svc.hook.existing(svc.ctx, svc.url)
        missing = [_account(state, n) for n in names if participant_email(state.name, n) not in existing]
        svc.hook.create(svc.ctx, svc.url, missing)
        gone = {
            e: i for e, i in existing.items() if (who := _ours(state, e)) is not None and who not in names
        }
        for account_id in gone.values():
            svc.hook.delete(svc.ctx, svc.url, account_id)
        created[svc.name], deleted[svc.name] = len(missing), len(gone)
    for name in stale:
        forget(state, name)
    result = Reconciled(names, created, deleted, stale, time.monotonic() - started)
    for svc in services:
        say(
            f"{svc.name}: {len(names)} participants' accounts ({created[svc.name]} made, "
            f"{deleted[svc.name]} deleted) in {result.seconds:.1f} s"
        )
    if stale:
        say(f"participants no longer in the roster, their keys and passwords deleted: {', '.join(stale)}")
    return result


# --- the commands' changes --------------------------------------------------------------------


@dataclass(frozen=True)
class Participant:
    """One participant as ``ops participants list`` shows them (never their secrets)."""

    name: str
    key: bool
    password: bool
    #: service -> True/False (has an account), or None when the service did not answer.
    accounts: dict[str, bool | None]
    in_profile: bool


def listing(plan: StackPlan, state: StackState) -> list[Participant]:
    """Every participant of the roster with what they hold; services that do not answer say ``None``."""
    names = roster(plan, state)
    held = set(state.secrets.names())
    accounts: dict[str, set[str] | None] = {}
    for svc in account_services(plan, state):
        accounts[svc.name] = set(svc.hook.existing(svc.ctx, svc.url)) if svc.hook.answers(svc.url) else None
    listed = set(profile_roster(plan))
    return [
        Participant(
            name,
            key_name(name) in held,
            password_name(name) in held,
            {
                s: (None if e is None else participant_email(state.name, name) in e)
                for s, e in accounts.items()
            },
            name in listed,
        )
        for name in names
    ]


def add(plan: StackPlan, state: StackState, names: list[str]) -> list[str]:
    """Add ``names`` to the roster with their secrets and accounts; returns those that were new.

    Every accounts service must answer first; an account that cannot be made takes the new
    secrets and the roster change back with it.
    """
    names = list(dict.fromkeys(check_name(name) for name in names))
    services = account_services(plan, state)
    require_answering(services, plan)
    current = roster(plan, state)
    new = [n for n in names if n not in current]
    had = set(state.secrets.names())
    made = [n for n in names if password_name(n) not in had]
    touched: list[tuple[AccountService, set[str]]] = []
    try:
        for name in names:
            state.secrets.get_or_create(password_name(name), new_password)
            state.secrets.get_or_create(key_name(name), token)
        for svc in services:
            existing = svc.hook.existing(svc.ctx, svc.url)
            todo = [_account(state, n) for n in names if participant_email(state.name, n) not in existing]
            touched.append((svc, set(existing)))
            svc.hook.create(svc.ctx, svc.url, todo)
    except BaseException:
        _take_back_accounts(state, touched, made)
        for name in made:
            forget(state, name)
        raise
    ChangesFile(state).update(lambda c: _fold(c, names, Changes.add))
    return new


def _take_back_accounts(
    state: StackState, touched: list[tuple[AccountService, set[str]]], made: list[str]
) -> None:
    """Delete the accounts a failed ``add`` made for ``made`` (whose new passwords it forgets), as far as
    the services let it: an account left behind would keep a password nobody has, and a later ``add``
    would take it for made."""
    for svc, before in touched:
        try:
            now = svc.hook.existing(svc.ctx, svc.url)
            for name in made:
                email = participant_email(state.name, name)
                if email in now and email not in before:
                    svc.hook.delete(svc.ctx, svc.url, now[email])
        except OpsError:
            continue


def remove(plan: StackPlan, state: StackState, names: list[str]) -> list[str]:
    """Take ``names`` out everywhere: accounts (with their chats), key, password, roster; returns them.

    Every name must be in the roster and every accounts service must answer, or nothing changes.
    """
    names = list(dict.fromkeys(names))
    current = roster(plan, state)
    unknown = [n for n in names if n not in current]
    if unknown:
        raise UsageError(
            f"no participant {unknown[0]!r} in stack {plan.name}",
            hint=f"`ops participants list {plan.name}` lists them",
        )
    services = account_services(plan, state)
    require_answering(services, plan)
    for svc in services:
        existing = svc.hook.existing(svc.ctx, svc.url)
        for name in names:
            account_id = existing.get(participant_email(state.name, name))
            if account_id:
                svc.hook.delete(svc.ctx, svc.url, account_id)
    for name in names:
        forget(state, name)
    ChangesFile(state).update(lambda c: _fold(c, names, Changes.remove))
    return list(names)


def reset(plan: StackPlan, state: StackState, name: str, key: bool = False) -> list[str]:
    """A new password for ``name`` (and a new key with ``key``), pushed to every accounts service first.

    Returns what was renewed. The stored password changes only once every service took the new one.
    """
    if name not in roster(plan, state):
        raise UsageError(
            f"no participant {name!r} in stack {plan.name}",
            hint=f"`ops participants list {plan.name}` lists them",
        )
    services = account_services(plan, state)
    require_answering(services, plan)
    password, old = Secret(new_password()), state.secrets.get(password_name(name))
    email = participant_email(state.name, name)
    for done, svc in enumerate(services):
        try:
            account_id = svc.hook.existing(svc.ctx, svc.url).get(email)
            if account_id is None:  # made by hand, or lost with the data volume
                svc.hook.create(svc.ctx, svc.url, [Account(name, email, password)])
            else:
                svc.hook.set_password(svc.ctx, svc.url, account_id, password)
        except BaseException:  # the services that took the new password get the stored one back
            for back in services[:done]:
                with contextlib.suppress(OpsError, KeyError):
                    ident = back.hook.existing(back.ctx, back.url)[email]
                    if old is not None:
                        back.hook.set_password(back.ctx, back.url, ident, old)
            raise
    state.secrets.set(password_name(name), password.reveal())
    renewed = ["password"]
    if key:
        state.secrets.set(key_name(name), token())
        renewed.append("gateway key")
    return renewed


def _fold(changes: Changes, names: list[str], step: Callable[[Changes, str], Changes]) -> Changes:
    for name in names:
        changes = step(changes, name)
    return changes
