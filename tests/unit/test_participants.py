"""Participants: the roster's arithmetic, their secrets, their accounts through a kind's hook, the
sheet, and the CLI's answers to bad input. The accounts service here is a fake kind registered the
way a plug-in would be; the real Open WebUI is in tests/integration/test_participants_stack.py."""

from __future__ import annotations

import json
import os
import re
import stat
import sys

import pytest

from ops import participants, profiles, services, sheet
from ops.cli import main
from ops.errors import OpsError, UsageError
from ops.plan import resolve
from ops.services import Account, ServiceKind
from ops.stack import participant_email
from ops.state import StackState

KIND = "accounts-test"


class FakeAccounts:
    """Accounts kept in a dict, as a service's API would keep them."""

    sign_in_path = "/login"

    def __init__(self):
        self.up = True
        self.users: dict[str, tuple[str, str]] = {}  # email -> (id, password)
        self.calls: list[str] = []
        self.refuse_passwords = False

    def answers(self, base_url, timeout=5):
        return self.up

    def existing(self, ctx, base_url):
        assert ctx.service == "chat" and base_url.startswith("http://127.0.0.1:")
        return {email: ident for email, (ident, _) in self.users.items()}

    def create(self, ctx, base_url, accounts):
        for a in accounts:
            assert isinstance(a, Account) and a.email not in self.users
            self.users[a.email] = (f"id-{a.name}", a.password.reveal())
            self.calls.append(f"create {a.name}")

    def set_password(self, ctx, base_url, account_id, password):
        if self.refuse_passwords:
            raise OpsError("refused", hint="test")
        email = next(e for e, (i, _) in self.users.items() if i == account_id)
        self.users[email] = (account_id, password.reveal())
        self.calls.append(f"password {account_id}")

    def delete(self, ctx, base_url, account_id):
        email = next(e for e, (i, _) in self.users.items() if i == account_id)
        del self.users[email]
        self.calls.append(f"delete {account_id}")


@pytest.fixture
def fake():
    hook = FakeAccounts()
    services.register(ServiceKind(name=KIND, description="test", port=80, host_port=3999, accounts=hook))
    yield hook
    services._KINDS.pop(KIND)


def _profile(tmp_path, participants_yaml: str = "{names: [ann, bob, cy]}", name: str = "demo"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        "models:\n"
        "  tiny: {path: bundled:tiny-fp32}\n"
        "services:\n"
        f"  chat: {{kind: {KIND}, image: test:1}}\n"
        f"participants: {participants_yaml}\n"
    )
    return path


@pytest.fixture
def stack(tmp_path, fake):
    path = _profile(tmp_path)
    plan = resolve(profiles.load_path(path), ask_catalog=False)
    return path, plan, StackState.for_stack(plan.name).ensure()


def _email(name):
    return participant_email("demo", name)


def test_the_roster_is_the_profiles_plus_added_minus_removed():
    c = participants.Changes()
    assert c.roster(("a", "b", "c")) == ("a", "b", "c")
    c = c.remove("b").add("d")
    assert c.roster(("a", "b", "c")) == ("a", "c", "d")
    # A removed profile participant stays removed until added again, and comes back in profile order.
    c = c.add("b")
    assert c.roster(("a", "b", "c")) == ("a", "b", "c", "d")
    assert c.remove("d").roster(("a", "b", "c")) == ("a", "b", "c")
    assert participants.Changes(added=("a",)).roster(("a",)) == ("a",)  # listed once


def test_the_changes_file_is_private_and_round_trips(stack):
    _, plan, state = stack
    changes = participants.ChangesFile(state)
    changes.update(lambda c: c.remove("bob").add("dee"))
    assert stat.S_IMODE(os.stat(changes.path).st_mode) == 0o600 or sys.platform == "win32"
    assert json.loads(changes.path.read_text()) == {"added": ["dee"], "removed": ["bob"]}
    assert participants.roster(plan, state) == ("ann", "cy", "dee")


def test_ensure_makes_readable_passwords_and_keys_once(stack):
    _, plan, state = stack
    assert participants.ensure(plan, state) == ("ann", "bob", "cy")
    first = {n: state.secrets.get(n) for n in state.secrets.names()}
    participants.ensure(plan, state)
    assert {n: state.secrets.get(n) for n in state.secrets.names()} == first
    password = state.secrets.get("participant-password:ann").reveal()
    assert re.fullmatch(r"[a-hjkmnp-z2-9]{4}-[a-hjkmnp-z2-9]{4}-[a-hjkmnp-z2-9]{4}", password)
    assert len(state.secrets.get("participant-key:ann").reveal()) >= 40
    assert len({state.secrets.get(f"participant-password:{n}").reveal() for n in ("ann", "bob", "cy")}) == 3


def test_reconcile_makes_the_missing_accounts_and_only_those(stack, fake):
    _, plan, state = stack
    said: list[str] = []
    result = participants.reconcile(plan, state, said.append)
    assert result is not None and result.created == {"chat": 3}
    assert set(fake.users) == {_email(n) for n in ("ann", "bob", "cy")}
    assert fake.users[_email("ann")][1] == state.secrets.get("participant-password:ann").reveal()
    assert any("3 participants' accounts (3 made, 0 deleted)" in s for s in said)
    fake.calls.clear()
    assert participants.reconcile(plan, state).created == {"chat": 0}
    assert fake.calls == []


def test_reconcile_takes_everything_from_names_the_profile_dropped(stack, fake, tmp_path):
    _, plan, state = stack
    participants.reconcile(plan, state)
    fake.users["someone@else.org"] = ("id-x", "pw")  # not a participant: left alone
    smaller = resolve(profiles.load_path(_profile(tmp_path, "{names: [ann]}")), ask_catalog=False)
    result = participants.reconcile(smaller, state)
    assert result.forgotten == ("bob", "cy") and result.deleted == {"chat": 2}
    assert set(fake.users) == {_email("ann"), "someone@else.org"}
    assert participants.with_secrets(state) == {"ann"}


def test_a_stack_without_participants_asks_no_service(tmp_path, fake):
    path = tmp_path / "plain.yaml"
    path.write_text(
        f"name: plain\nmodels:\n  tiny: {{path: bundled:tiny-fp32}}\nservices:\n  chat: {{kind: {KIND}, image: t:1}}\n"
    )
    plan = resolve(profiles.load_path(path), ask_catalog=False)
    fake.up = False  # would fail if asked
    assert participants.reconcile(plan, StackState.for_stack("plain").ensure()) is None


def test_add_makes_secrets_and_account_and_remove_takes_all_back(stack, fake):
    _, plan, state = stack
    participants.reconcile(plan, state)
    assert participants.add(plan, state, ["dee", "ann"]) == ["dee"]
    assert _email("dee") in fake.users and participants.roster(plan, state)[-1] == "dee"
    assert participants.remove(plan, state, ["dee", "bob"]) == ["dee", "bob"]
    assert _email("dee") not in fake.users and _email("bob") not in fake.users
    assert participants.with_secrets(state) == {"ann", "cy"}
    assert participants.roster(plan, state) == ("ann", "cy")
    # Added again: new secrets, a new account.
    participants.add(plan, state, ["bob"])
    assert participants.roster(plan, state) == ("ann", "bob", "cy")
    assert _email("bob") in fake.users


def test_nothing_changes_when_the_accounts_service_does_not_answer(stack, fake):
    _, plan, state = stack
    participants.reconcile(plan, state)
    before = (dict(fake.users), state.secrets.names(), participants.roster(plan, state))
    fake.up = False
    for change in (
        lambda: participants.add(plan, state, ["dee"]),
        lambda: participants.remove(plan, state, ["bob"]),
        lambda: participants.reset(plan, state, "bob"),
    ):
        with pytest.raises(OpsError, match="does not answer") as caught:
            change()
        assert "ops up demo" in caught.value.hint
    assert (dict(fake.users), state.secrets.names(), participants.roster(plan, state)) == before


def test_an_account_that_cannot_be_made_takes_the_new_secrets_back(stack, fake, monkeypatch):
    _, plan, state = stack
    participants.reconcile(plan, state)

    def refuse(ctx, base_url, accounts):
        raise OpsError("refused", hint="test")

    monkeypatch.setattr(fake, "create", refuse)
    with pytest.raises(OpsError, match="refused"):
        participants.add(plan, state, ["dee"])
    assert "dee" not in participants.with_secrets(state) and "dee" not in participants.roster(plan, state)


def test_an_add_that_fails_halfway_takes_back_the_accounts_it_made(stack, fake, monkeypatch):
    """dee's account made, then eve's refused: dee's secrets are forgotten, so dee's account goes too (a
    later add would otherwise find it and keep a password nobody has)."""
    _, plan, state = stack
    participants.reconcile(plan, state)
    made = fake.create

    def second_refused(ctx, base_url, accounts):
        made(ctx, base_url, accounts[:1])
        raise OpsError("refused", hint="test")

    monkeypatch.setattr(fake, "create", second_refused)
    with pytest.raises(OpsError, match="refused"):
        participants.add(plan, state, ["dee", "eve", "ann"])
    assert _email("dee") not in fake.users and _email("ann") in fake.users
    assert not {"dee", "eve"} & participants.with_secrets(state)
    monkeypatch.setattr(fake, "create", made)
    participants.add(plan, state, ["dee"])
    assert fake.users[_email("dee")][1] == state.secrets.get("participant-password:dee").reveal()


def test_reset_pushes_the_new_password_first(stack, fake):
    _, plan, state = stack
    participants.reconcile(plan, state)
    old_password = state.secrets.get("participant-password:bob")
    old_key = state.secrets.get("participant-key:bob")
    assert participants.reset(plan, state, "bob") == ["password"]
    new = state.secrets.get("participant-password:bob")
    assert new != old_password and fake.users[_email("bob")][1] == new.reveal()
    assert state.secrets.get("participant-key:bob") == old_key
    assert participants.reset(plan, state, "bob", key=True) == ["password", "gateway key"]
    assert state.secrets.get("participant-key:bob") != old_key
    fake.refuse_passwords = True
    kept = state.secrets.get("participant-password:bob")
    with pytest.raises(OpsError):
        participants.reset(plan, state, "bob")
    assert state.secrets.get("participant-password:bob") == kept  # the account still has it
    with pytest.raises(UsageError, match="no participant 'zed'"):
        participants.reset(plan, state, "zed")


def test_a_reset_the_second_service_refuses_gives_the_first_the_stored_password_back(
    stack, fake, monkeypatch
):
    _, plan, state = stack
    participants.reconcile(plan, state)
    [chat] = participants.account_services(plan, state)
    second = FakeAccounts()
    second.users = {e: (f"2-{i}", p) for e, (i, p) in fake.users.items()}
    second.refuse_passwords = True
    monkeypatch.setattr(
        participants,
        "account_services",
        lambda plan, state: [chat, participants.AccountService("chat", chat.url, second, chat.ctx)],
    )
    kept = state.secrets.get("participant-password:bob")
    with pytest.raises(OpsError, match="refused"):
        participants.reset(plan, state, "bob")
    assert state.secrets.get("participant-password:bob") == kept
    assert fake.users[_email("bob")][1] == kept.reveal(), "the first service kept a password nobody has"


def test_the_sheet_has_a_card_per_participant_with_only_their_secrets(stack, fake, tmp_path):
    _, plan, state = stack
    participants.reconcile(plan, state)
    out = tmp_path / "out" / "sheet.html"
    assert sheet.write(plan, state, out) == 3
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600 or sys.platform == "win32"
    page = out.read_text()
    cards = re.findall(r'<section class="card" id="card-(\w+)">(.*?)</section>', page, re.S)
    assert [name for name, _ in cards] == ["ann", "bob", "cy"]
    secrets = {
        n: (
            state.secrets.get(f"participant-password:{n}").reveal(),
            state.secrets.get(f"participant-key:{n}").reveal(),
        )
        for n in ("ann", "bob", "cy")
    }
    for name, body in cards:
        for other, (password, key) in secrets.items():
            assert (password in body) == (other == name) and (key in body) == (other == name)
        assert _email(name) in body and "<svg" in body
        assert "http://127.0.0.1:3999" in body and plan.gateway.url in body
    assert "http://" in page and "<script" not in page  # self-contained, nothing to fetch
    assert "work on this machine only" in page  # no expose: the room cannot reach these


def test_the_sheet_needs_participants(tmp_path, fake):
    plan = resolve(profiles.load_path(_profile(tmp_path, "{names: [ann]}")), ask_catalog=False)
    with pytest.raises(OpsError, match="no participants"):
        sheet.write(plan, StackState.for_stack("demo").ensure(), tmp_path / "s.html")


def test_cli_list_add_remove_reset_sheet(stack, fake, tmp_path, capsys):
    path, plan, state = stack
    participants.reconcile(plan, state)
    assert main(["participants", "list", str(path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed["participants"]] == ["ann", "bob", "cy"]
    assert listed["participants"][0]["accounts"] == {"chat": True} and listed["participants"][0]["key"]
    for name in ("ann", "bob"):
        assert state.secrets.get(f"participant-password:{name}").reveal() not in json.dumps(listed)
    assert main(["participants", "add", str(path), "dee"]) == 0
    assert main(["participants", "remove", str(path), "dee", "--yes"]) == 0
    assert main(["participants", "reset", str(path), "ann"]) == 0
    sheet_path = tmp_path / "cards.html"
    assert main(["participants", "sheet", str(path), "-o", str(sheet_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote 3 cards to {sheet_path}" in out
    assert state.secrets.get("participant-password:ann").reveal() not in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["add", "{p}", "Bad Name"], 2, "invalid participant name 'Bad Name'"),
        (["remove", "{p}", "zed", "--yes"], 2, "no participant 'zed' in stack demo"),
        (["reset", "{p}", "zed"], 2, "no participant 'zed' in stack demo"),
        (["remove", "{p}", "../x", "--yes"], 2, "invalid participant name"),
        (["list", "nosuchprofile"], 2, "nosuchprofile"),
    ],
)
def test_cli_bad_input_is_one_line_and_a_code(stack, argv, code, message, capsys):
    path = stack[0]
    assert main(["participants", *(a.replace("{p}", str(path)) for a in argv)]) == code
    err = capsys.readouterr().err
    assert message in err and "hint:" in err and "Traceback" not in err


def test_cli_when_the_stack_is_not_up(stack, fake, capsys):
    path, plan, state = stack
    participants.reconcile(plan, state)
    fake.up = False
    assert main(["participants", "add", str(path), "dee"]) == 1
    err = capsys.readouterr().err
    assert "does not answer" in err and "ops up demo" in err
    assert "dee" not in participants.with_secrets(state)
    assert main(["participants", "list", str(path)]) == 0
    assert "does not answer" in capsys.readouterr().err


def test_cli_remove_asks_first(stack, fake, monkeypatch, capsys):
    path, plan, state = stack
    participants.reconcile(plan, state)
    monkeypatch.setattr("typer.confirm", lambda *a, **k: False)
    assert main(["participants", "remove", str(path), "bob"]) == 1
    assert "nothing removed" in capsys.readouterr().err
    assert _email("bob") in fake.users and "bob" in participants.with_secrets(state)


def test_the_sheet_gives_the_rooms_https_addresses_with_expose(tmp_path, fake):
    path = _profile(tmp_path, "{names: [ann]}")
    path.write_text(path.read_text() + "expose: {address: 192.0.2.2}\n")
    plan = resolve(profiles.load_path(path), ask_catalog=False)
    state = StackState.for_stack("demo").ensure()
    participants.ensure(plan, state)
    out = tmp_path / "sheet.html"
    sheet.write(plan, state, out)
    page = out.read_text()
    assert "https://192.0.2.2:3999" in page and "https://192.0.2.2:8000/v1" in page
    assert "127.0.0.1" not in page and "work on this machine only" not in page
    (card,) = sheet.cards(plan, state)
    assert card.qr_url == "https://192.0.2.2:3999/login"


def test_add_of_a_profile_participant_before_any_up_makes_their_secrets_and_account(stack, fake):
    _, plan, state = stack
    assert participants.add(plan, state, ["ann", "ann"]) == []  # already in the roster, listed once
    assert participants.with_secrets(state) == {"ann"} and set(fake.users) == {_email("ann")}
