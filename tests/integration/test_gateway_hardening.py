"""The gateway against abuse, on a real host: stalled connections, bad bodies, clients that leave, fuzzing.

The profile sets short read deadlines (``head_timeout``/``body_timeout`` 2 s) so the test need not
wait the defaults' 10 and 30 s, and ``max_connections`` 700 so 500 stalled sockets fit but 900 do not.
"""

from __future__ import annotations

import asyncio
import json
import resource
import selectors
import socket
import time

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from ops import profiles
from ops.host import process
from ops.plan import resolve
from ops.settings import Settings
from ops.stack import GATEWAY_KEY, prepare_state
from tests.integration.hosts import free_port
from tests.integration.stub_upstream import StubUpstream

DEADLINE = 2.0
MAX_CONNECTIONS = 700
HI = [{"role": "user", "content": "Hi"}]


class SlowUpstream(StubUpstream):
    """Takes 30 s to answer, but notices a client that leaves (``left_after``: seconds after the request)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.left_after: list[float] = []
        self.arrived: list[float] = []

    async def _chat(self, request: Request) -> Response:
        await request.body()
        started = time.monotonic()
        self.arrived.append(started)
        while time.monotonic() - started < 30:
            if await request.is_disconnected():
                self.left_after.append(time.monotonic() - started)
                return Response(status_code=499)
            await asyncio.sleep(0.02)
        return await super()._chat(request)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    # This process holds up to 1,000 sockets at once: a desktop's soft limit of 1024 is too few.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (4096 if hard == resource.RLIM_INFINITY else min(4096, hard), hard)
        )
    home = tmp_path_factory.mktemp("hardening-home")
    with StubUpstream("stub") as stub, SlowUpstream("slow") as slow, StubUpstream("bad", "fail") as bad:
        port = free_port()
        path = tmp_path_factory.mktemp("hardening") / "hardened.yaml"
        path.write_text(
            f"""\
models:
  tiny: {{path: bundled:tiny-fp32}}
  stub: {{url: "{stub.url}", model: m, remote: false}}
  slow: {{url: "{slow.url}", model: m, remote: false}}
  bad: {{url: "{bad.url}", model: m, remote: false}}
gateway:
  port: {port}
  bind: [127.0.0.1]
  default_max_tokens: 8
  head_timeout: {DEADLINE}
  body_timeout: {DEADLINE}
  max_connections: {MAX_CONNECTIONS}
"""
        )
        settings_ = Settings.from_env({"OPS_HOME": str(home)})
        loaded = profiles.load_path(path)
        state = prepare_state(loaded.name, settings_)
        process.start(resolve(loaded), state, ["127.0.0.1"], timeout=120)
        key = state.secrets.get(GATEWAY_KEY).reveal()
        try:
            yield {"port": port, "url": f"http://127.0.0.1:{port}", "key": key, "slow": slow}
        finally:
            process.stop(state)


def _auth(gw) -> dict[str, str]:
    return {"authorization": f"Bearer {gw['key']}"}


def _served(gw, model: str = "stub") -> float:
    """Seconds a keyed chat takes (asserting it succeeds)."""
    started = time.monotonic()
    body = {"model": model, "messages": HI, "max_tokens": 4}
    response = httpx.post(f"{gw['url']}/v1/chat/completions", json=body, headers=_auth(gw), timeout=10)
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def _stall(port: int, count: int, source: str) -> list[socket.socket]:
    """``count`` sockets from ``source`` that send part of a request and then nothing: four kinds of stall.

    The keyed client connects from 127.0.0.1; stalls come from other loopback addresses, as they
    would from another container (one address may hold half of ``max_connections``).
    """
    partial = [
        b"POST /v1/chat/completions HT",  # half a request line
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n",  # half a head
        b"",  # connect and say nothing
        # a whole head promising 10,000 bytes of body, then 10 of them
        b'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 10000\r\n\r\n{"model":',
    ]
    sockets = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
        if partial[i % 4]:
            sock.sendall(partial[i % 4])
        sockets.append(sock)
    return sockets


def _closed_in(sockets: list[socket.socket], seconds: float) -> list[socket.socket]:
    """Those of ``sockets`` the server closes within ``seconds`` (the others stay open)."""
    closed = []
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for key, _ in selector.select(max(0.0, end - time.monotonic())):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    closed.append(sock)
                    selector.unregister(sock)
    return closed


def _wait_closed(sockets: list[socket.socket], timeout: float) -> tuple[int, list[bytes]]:
    """Read every socket until the server closes it or ``timeout``: (how many it closed, what it said)."""
    said: dict[socket.socket, bytes] = dict.fromkeys(sockets, b"")
    closed = 0
    with selectors.DefaultSelector() as selector:  # epoll: select() stops at descriptor 1024
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        end = time.monotonic() + timeout
        while selector.get_map() and time.monotonic() < end:
            for key, _ in selector.select(0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if data:
                    said[sock] += data
                else:
                    closed += 1
                    selector.unregister(sock)
    for sock in sockets:
        sock.close()
    return closed, list(said.values())


def test_500_stalled_connections_neither_block_a_keyed_client_nor_stay_open(gw):
    sockets = _stall(gw["port"], 250, "127.0.0.2") + _stall(gw["port"], 250, "127.0.0.3")
    opened = time.monotonic()
    try:
        took = [_served(gw) for _ in range(5)]
        models = httpx.get(f"{gw['url']}/v1/models", headers=_auth(gw), timeout=10)
        assert models.status_code == 200
        assert max(took) < 1.0, f"a keyed chat took {max(took):.2f} s behind 500 stalled sockets"
        assert time.monotonic() - opened < DEADLINE, "the keyed requests were not served before the deadline"
        closed, said = _wait_closed(sockets, DEADLINE + 5)
    finally:
        for sock in sockets:
            sock.close()
    assert closed == 500, f"only {closed} of 500 stalled connections were closed"
    assert time.monotonic() - opened < DEADLINE + 3
    for answer in said:
        head, _, body = answer.partition(b"\r\n\r\n")
        # A stall in the head is answered 408; a head without a key is answered 401 at once, and
        # the connection still closed at the body deadline.
        # (and one that never began a request is closed without a word, as for keep-alive).
        if answer:
            assert head.startswith((b"HTTP/1.1 408 ", b"HTTP/1.1 401 ")), answer[:200]
            assert json.loads(body)["error"]["code"] in ("request_timeout", "invalid_api_key")
    silent = [i for i, answer in enumerate(said) if not answer]
    assert silent == [i for i in range(500) if i % 250 % 4 == 2]  # the sockets that said nothing
    _served(gw)


def test_past_max_connections_the_oldest_stalled_ones_make_room_for_new_ones(gw):
    sources = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
    sockets = [s for source in sources for s in _stall(gw["port"], 300, source)]
    try:
        # The 200 oldest of those still waiting for a head; a head without a key was answered 401
        # at once, and that connection waits at the back of the line.
        evicted = _closed_in(sockets, 0.5)
        assert len(evicted) == 200, f"{len(evicted)} stalled connections were closed to make room, not 200"
        assert _served(gw) < 1.0  # a new connection with a whole request is served at once
        rest = [sock for sock in sockets if sock not in set(evicted)]
        closed, _ = _wait_closed(rest, DEADLINE + 5)
        assert closed == MAX_CONNECTIONS
    finally:
        for sock in sockets:
            sock.close()
    _served(gw)


def test_one_client_address_holds_at_most_half_the_connections(gw):
    half = MAX_CONNECTIONS // 2
    sockets = _stall(gw["port"], half + 50, "127.0.0.5")
    try:
        time.sleep(0.3)
        refused, said = _wait_closed(sockets[half:], 1.0)
        assert refused == 50 and all(b"half the gateway's" in answer for answer in said)
        assert _served(gw) < 1.0  # another address (127.0.0.1) still gets in
        closed, _ = _wait_closed(sockets[:half], DEADLINE + 5)
        assert closed == half
    finally:
        for sock in sockets:
            sock.close()
    # Its slots are free again once its connections are gone.
    again = _stall(gw["port"], 10, "127.0.0.5")
    try:
        time.sleep(0.3)
        assert _wait_closed(again, 0.5)[0] == 0
    finally:
        for sock in again:
            sock.close()


def test_a_body_sent_a_byte_at_a_time_is_cut_at_the_body_deadline(gw):
    sock = socket.create_connection(("127.0.0.1", gw["port"]))
    head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {gw['key']}\r\ncontent-length: 100\r\n\r\n"
    sock.sendall(head.encode())
    started = time.monotonic()
    answer = b""
    sock.settimeout(0.3)
    while time.monotonic() - started < DEADLINE + 5:
        try:
            sock.sendall(b" ")
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if not chunk:
            break
        answer += chunk
    sock.close()
    assert time.monotonic() - started < DEADLINE + 1.5
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


BAD_BODIES = [
    (b"[" * 100_000 + b"]" * 100_000, None),
    (
        json.dumps(
            {
                "model": "stub",
                "messages": HI,
                "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
            }
        )
        .encode()
        .replace(b"[]", b"[" * 60 + b"]" * 60),
        None,
    ),
    (
        b'{"model": "stub", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": '
        + b"9" * 5000
        + b"}",
        None,
    ),
    (b'{"model": "stub", "messages": [{"role": "user", "content": "Hi"}], "temperature": NaN}', None),
    (b'{"model": "stub", "messages": [{"role": "user", "content": "Hi"}], "top_p": Infinity}', None),
    (b'{"model": "stub", "messages": [{"role": "user", "content": "Hi"}], "temperature": 1e999}', None),
    (b'{"model": "stub", "messages": [{"role": "user", "content": "\\ud800"}]}', None),
]
BAD_FIELDS = [
    ({"stream": "false"}, "stream"),
    ({"max_tokens": "10"}, "max_tokens"),
    ({"max_tokens": -5}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": 1.5}, "max_completion_tokens"),
    ({"messages": {"role": "user", "content": "Hi"}}, "messages"),
    ({"messages": "Hi"}, "messages"),
    ({"messages": [1]}, "messages"),
    ({"messages": [{"content": "Hi"}]}, "messages"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages"),
    ({"model": 5}, "model"),
    ({"model": ["stub"]}, "model"),
    ({"temperature": "0.5"}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"temperature": 7}, "temperature"),
    ({"top_p": -1}, "top_p"),
    ({"n": "2"}, "n"),
    ({"n": 0}, "n"),
    ({"stop": 5}, "stop"),
    ({"stop": [1, 2]}, "stop"),
    ({"tools": {"type": "function"}}, "tools"),
    ({"seed": 1.5}, "seed"),
    ({"user": 7}, "user"),
]


def _assert_openai_400(response: httpx.Response, param: str | None = None) -> None:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param, error


@pytest.mark.parametrize(("raw", "param"), BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_bad_json_is_400_in_openai_shape(gw, raw, param):
    headers = {**_auth(gw), "content-type": "application/json"}
    response = httpx.post(f"{gw['url']}/v1/chat/completions", content=raw, headers=headers, timeout=10)
    _assert_openai_400(response, param)


@pytest.mark.parametrize(("change", "param"), BAD_FIELDS, ids=[p for _, p in BAD_FIELDS])
def test_wrongly_typed_fields_are_400_naming_the_field(gw, change, param):
    body = {"model": "stub", "messages": HI, **change}
    response = httpx.post(f"{gw['url']}/v1/chat/completions", json=body, headers=_auth(gw), timeout=10)
    _assert_openai_400(response, param)


@pytest.mark.parametrize(
    ("change", "param"),
    [({"input": 5}, "input"), ({"input": []}, "input"), ({"dimensions": "3"}, "dimensions")],
)
def test_wrongly_typed_embeddings_fields_are_400(gw, change, param):
    body = {"model": "stub", "input": "hello", **change}
    response = httpx.post(f"{gw['url']}/v1/embeddings", json=body, headers=_auth(gw), timeout=10)
    _assert_openai_400(response, param)


def test_an_upstream_500_is_a_502_in_openai_shape(gw):
    body = {"model": "bad", "messages": HI}
    response = httpx.post(f"{gw['url']}/v1/chat/completions", json=body, headers=_auth(gw), timeout=10)
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["type"] == "api_error" and "boom" in error["message"]


def test_a_client_that_leaves_a_non_streamed_request_cancels_the_upstream(gw):
    slow = gw["slow"]
    before = len(slow.left_after)
    body = {"model": "slow", "messages": HI}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gw['url']}/v1/chat/completions", json=body, headers=_auth(gw), timeout=1.5)
    left = time.monotonic()
    while len(slow.left_after) == before and time.monotonic() - left < 10:
        time.sleep(0.02)
    assert len(slow.left_after) == before + 1, "the upstream still generates for a client that left"
    noticed = slow.arrived[-1] + slow.left_after[-1] - left
    assert noticed < 0.5, f"the upstream noticed {noticed:.2f} s after the client left"


# -- fuzzing ---------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
messages = st.one_of(
    json_values,
    st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "system", "assistant"]) | json_values},
            optional={"content": st.text(max_size=40) | json_values, "name": json_values},
        ),
        max_size=3,
    ),
)
FIELD_VALUES = {
    "model": st.sampled_from(["stub", "tiny", "bad", "nope", ""]) | json_values,
    "messages": messages,
    "stream": st.booleans() | json_values,
    "max_tokens": st.integers(min_value=-3, max_value=8) | st.integers() | json_values,
    "max_completion_tokens": st.integers(min_value=-3, max_value=8) | json_values,
    "temperature": st.floats(min_value=-1, max_value=3, allow_nan=False) | json_values,
    "top_p": st.floats(min_value=-1, max_value=2, allow_nan=False) | json_values,
    "n": st.integers(min_value=-1, max_value=3) | json_values,
    "stop": st.lists(st.text(max_size=5), max_size=5) | json_values,
    "seed": st.integers() | json_values,
    "tools": json_values,
    "input": st.text(max_size=20) | st.lists(st.text(max_size=10), max_size=3) | json_values,
    "x-extra": json_values,
}
bodies = st.fixed_dictionaries({}, optional=FIELD_VALUES)
#: A valid chat with one or two fields fuzzed: the requests that get furthest, to the upstreams.
near_valid = st.builds(
    lambda model, stream, extra: {"model": model, "messages": HI, "max_tokens": 4, "stream": stream, **extra},
    st.sampled_from(["stub", "tiny", "bad"]),
    st.booleans(),
    st.fixed_dictionaries({}, optional={k: v for k, v in FIELD_VALUES.items() if k != "model"}).filter(
        lambda d: len(d) <= 2
    ),
)
raw_bodies = st.one_of(
    near_valid.map(lambda b: json.dumps(b).encode()),
    bodies.map(lambda b: json.dumps(b).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from([raw for raw, _ in BAD_BODIES[2:]]),
    st.integers(min_value=1, max_value=3000).map(lambda n: b'{"model": "stub", "messages": ' + b"[" * n),
)
header_names = st.sampled_from(["x-ops-private", "content-type", "accept", "x-request-id"]) | st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12
).filter(
    lambda n: n not in ("content-length", "transfer-encoding", "host", "connection", "upgrade", "expect")
)
header_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=30
).map(lambda value: value.strip(" "))  # h11 (the client) sends no value with spaces around it
extra_headers = st.dictionaries(header_names, header_values, max_size=4)
auth_choice = st.sampled_from(["key", "key", "key", "key", "wrong", "none", "basic"])
targets = st.sampled_from(
    [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/tiny"),
        ("POST", "/v1/models"),
        ("GET", "/v1/chat/completions"),
        ("POST", "/v1/nothing"),
    ]
)


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)
@given(target=targets, raw=raw_bodies, headers=extra_headers, auth=auth_choice)
def test_fuzzed_requests_get_json_answers_never_500_and_never_hang(gw, target, raw, headers, auth):
    method, path = target
    sent = {name: value.encode("latin-1") for name, value in headers.items()}
    if auth == "key":
        sent.update({k: v.encode() for k, v in _auth(gw).items()})
    elif auth == "wrong":
        sent["authorization"] = b"Bearer not-the-key"
    elif auth == "basic":
        sent["authorization"] = b"Basic Zm9vOmJhcg=="
    client = _fuzz_client(gw)
    response = client.request(method, path, content=raw if method == "POST" else None, headers=sent)
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500 or response.status_code in (502, 503), (
        response.status_code,
        response.text[:300],
    )
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), response.text[:300]
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert isinstance(error["message"], str) and isinstance(error["type"], str)
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.rstrip().endswith("data: [DONE]"), response.text[-200:]
    else:
        assert isinstance(response.json(), dict)


_clients: dict[int, httpx.Client] = {}


def _fuzz_client(gw) -> httpx.Client:
    """One keep-alive client for the whole fuzz run (a hang fails on its 20 s timeout)."""
    if gw["port"] not in _clients:
        _clients[gw["port"]] = httpx.Client(base_url=gw["url"], timeout=20)
    return _clients[gw["port"]]


def test_the_host_still_serves_after_the_fuzzing(gw):
    for client in _clients.values():
        client.close()
    assert httpx.get(f"{gw['url']}/health", timeout=5).status_code == 200
    assert _served(gw, "tiny") < 5
    assert _served(gw, "stub") < 1
