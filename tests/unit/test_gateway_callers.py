"""Who asks: the stack's key, a participant's key, a service's key, and the users a service forwards
(believed with a service's key only); removed participants refused; the Chainlit app's sign-in check."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from ops.gateway.callers import ADMIN, Caller, Callers
from ops.gateway.errors import GatewayError
from ops.host.keys import ParticipantKeys
from ops.secrets import Secret, SecretStore
from ops.stack import PARTICIPANT_KEY_PREFIX, PARTICIPANT_PASSWORD_PREFIX, participant_email

from .gatewayfakes import KEY, Call, FakeParticipants, FakeUpstream, RecordingMeter, bearer, make_app

SERVICE = "service-key-abcdef"
ANN, BOB = "ann-key-0001", "bob-key-0002"
ANN_EMAIL = participant_email("demo", "ann")


@pytest.fixture
def participants():
    return FakeParticipants(
        keys={"ann": ANN, "bob": BOB}, passwords={"ann": "ann-pw", "bob": "bob-pw", "gone": "x"}
    )


@pytest.fixture
def callers(participants):
    services = {f"Bearer {SERVICE}".encode(): "chat"}
    return Callers("demo", Secret(KEY), services.get, participants)


def request(headers: dict[str, str], path: str = "/v1/chat/completions") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": path, "headers": raw, "query_string": b""})


def refused(callers: Callers, headers: dict[str, str], **kwargs) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        callers.identify(request(headers), **kwargs)
    return caught.value


def test_the_stack_key_is_the_admin_everywhere(callers):
    assert callers.identify(request(bearer(KEY))) == ADMIN
    assert callers.identify(request(bearer(KEY)), admin=True) == ADMIN


def test_a_participant_key_runs_models_as_that_participant_but_no_admin_route(callers):
    assert callers.identify(request(bearer(ANN))) == Caller("participant:ann", participant="ann")
    error = refused(callers, bearer(ANN), admin=True)
    assert error.status == 403 and error.code == "insufficient_permissions" and "'ann'" in error.message
    assert refused(callers, bearer(ANN), admin=True, services_too=True).status == 403, "nor the sign-in check"


def test_a_service_key_is_the_service_when_it_names_no_user(callers):
    assert callers.identify(request(bearer(SERVICE))) == Caller("service:chat", service="chat")
    assert refused(callers, bearer(SERVICE), admin=True).status == 403
    assert callers.identify(request(bearer(SERVICE)), admin=True, services_too=True).id == "service:chat"


def test_open_webui_forwarded_participant_is_that_participant(callers):
    headers = {**bearer(SERVICE), "X-OpenWebUI-User-Email": ANN_EMAIL.upper(), "X-OpenWebUI-User-Name": "ann"}
    assert callers.identify(request(headers)) == Caller("participant:ann", participant="ann", service="chat")


def test_open_webui_forwarded_other_user_is_counted_by_email(callers):
    headers = {**bearer(SERVICE), "X-OpenWebUI-User-Email": "Teacher@School.example"}
    assert callers.identify(request(headers)) == Caller("user:teacher@school.example", service="chat")


def test_chainlit_forwarded_participant(callers):
    headers = {**bearer(SERVICE), "X-Ops-User": "bob"}
    assert callers.identify(request(headers)).id == "participant:bob"


@pytest.mark.parametrize(
    "forwarded",
    [{"X-OpenWebUI-User-Email": participant_email("demo", "gone")}, {"X-Ops-User": "gone"}],
)
def test_a_removed_participant_is_refused_through_every_app(callers, forwarded):
    error = refused(callers, {**bearer(SERVICE), **forwarded})
    assert error.status == 403 and error.code == "participant_removed"
    assert "participant removed" in error.message


@pytest.mark.parametrize("key", [ANN, "not-a-key", None])
def test_forwarded_headers_are_believed_only_with_a_service_key(callers, key):
    headers = {"X-OpenWebUI-User-Email": participant_email("demo", "bob"), "X-Ops-User": "bob"}
    if key is None:
        assert refused(callers, headers).status == 401
    elif key == ANN:
        assert callers.identify(request({**bearer(key), **headers})).id == "participant:ann", "not bob"
    else:
        assert refused(callers, {**bearer(key), **headers}).status == 401


def test_the_removed_participant_key_is_refused_401(callers, participants):
    del participants.keys["ann"]
    error = refused(callers, bearer(ANN))
    assert error.status == 401 and error.code == "invalid_api_key"


def test_sign_in_checks_name_and_password(callers, participants):
    assert callers.sign_in("ann", "ann-pw") == "ann"
    assert callers.sign_in(" Ann ", "ann-pw") == "ann"
    assert callers.sign_in("ann", "bob-pw") is None
    assert callers.sign_in("nobody", "ann-pw") is None
    assert callers.sign_in("gone", "x") is None, "a password without a key: a removed participant"
    assert callers.sign_in("ann", "") is None and callers.sign_in(None, None) is None
    assert callers.sign_in("ann", 123) is None


def _signin(app, headers, body):
    async def call() -> Call:
        return await Call(app, "/ops/v1/signin", body, headers).done()

    return asyncio.run(call())


def test_the_signin_route_for_the_chainlit_app(participants):
    app = make_app(FakeUpstream(), participants=participants, services={"rag": SERVICE})
    ok = _signin(app, bearer(SERVICE), {"username": "ann", "password": "ann-pw"})
    assert ok.status == 200 and ok.json() == {"participant": "ann"}
    assert _signin(app, bearer(KEY), {"username": "bob", "password": "bob-pw"}).json() == {
        "participant": "bob"
    }
    wrong = _signin(app, bearer(SERVICE), {"username": "ann", "password": "nope"})
    unknown = _signin(app, bearer(SERVICE), {"username": "zed", "password": "ann-pw"})
    assert wrong.status == unknown.status == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"], "never says which part"
    assert _signin(app, bearer(ANN), {"username": "ann", "password": "ann-pw"}).status == 403
    assert _signin(app, {}, {"username": "ann", "password": "ann-pw"}).status == 401
    assert _signin(app, bearer(SERVICE), ["ann"]).status == 400


def test_the_meter_records_who_asked(participants):
    meter = RecordingMeter()
    app = make_app(FakeUpstream(), meter=meter, participants=participants, services={"chat": SERVICE})
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}]}

    async def run() -> None:
        for headers in (
            bearer(KEY),
            bearer(ANN),
            bearer(SERVICE),
            {**bearer(SERVICE), "X-OpenWebUI-User-Email": participant_email("demo", "bob")},
            {**bearer(SERVICE), "X-OpenWebUI-User-Email": "t@school.example"},
        ):
            assert (await Call(app, "/v1/chat/completions", chat, headers).done()).status == 200
        assert (await Call(app, "/v1/chat/completions", chat, bearer("wrong")).done()).status == 401

    asyncio.run(run())
    assert [(r.caller, r.participant) for r in meter.records] == [
        ("admin", None),
        ("participant:ann", "ann"),
        ("service:chat", None),
        ("participant:bob", "bob"),
        ("user:t@school.example", None),
    ], "one record per request past the key check"


def test_participant_keys_follow_the_store(tmp_path):
    store = SecretStore(tmp_path / "secrets.json")
    keys = ParticipantKeys(store)
    assert keys.names() == frozenset() and keys(b"Bearer x") is None
    value = store.get_or_create(PARTICIPANT_KEY_PREFIX + "ann").reveal()
    store.set(PARTICIPANT_PASSWORD_PREFIX + "ann", "pw")
    assert keys(f"Bearer {value}".encode()) == "ann" and keys.names() == {"ann"}
    assert keys.password("ann") == Secret("pw") and keys.password("bob") is None
    store.delete(PARTICIPANT_KEY_PREFIX + "ann")
    assert keys(f"Bearer {value}".encode()) is None and keys.names() == frozenset()
