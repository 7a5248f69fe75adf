"""What the gateway refuses before any upstream sees it: bodies (ops.gateway.validate) and connections."""

from __future__ import annotations

import json
import resource

import pytest
from starlette.testclient import TestClient

from ops.gateway import ModelState, ModelTable, Route, protocol, validate
from ops.gateway.app import GatewayConfig, create_app
from ops.profiles.schema import GatewaySpec
from ops.secrets import Secret

pytestmark = pytest.mark.unit
KEY = "test-key-0123456789"
HI = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 50_000 + b"]" * 50_000,  # past Python's recursion limit
        b'{"a":' + b"[" * 65 + b"]" * 65 + b"}",  # past MAX_DEPTH, within Python's limit
        b'{"n": ' + b"7" * 4301 + b"}",
        b'{"t": NaN}',
        b'{"t": -Infinity}',
        b'{"t": 1e400}',
        b'{"s": "\\udc00"}',
        b'{"\\ud800": 1}',
        b"\xff\xfe\x00",
        b'"a string"',
    ],
)
def test_parse_refuses_what_cannot_be_forwarded(raw):
    with pytest.raises(validate.InvalidBody) as info:
        validate.parse(raw)
    assert info.value.code == "invalid_json"


def test_parse_keeps_ordinary_bodies():
    body = {"model": "m", "messages": HI, "temperature": 0.2, "x": [[[1]]], "s": "h\u00e9 \U0001f600"}
    assert validate.parse(json.dumps(body).encode()) == body


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"stream": "false"}, "stream"),
        ({"stream": 0}, "stream"),
        ({"max_tokens": "5"}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": 2**31}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"messages": "Hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": 1, "content": "Hi"}]}, "messages"),
        ({"model": ""}, "model"),
        ({"temperature": "1"}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"n": 1.0}, "n"),
        ({"stop": {"a": 1}}, "stop"),
        ({"tool_choice": 3}, "tool_choice"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ],
)
def test_chat_fields_of_the_wrong_type_name_the_field(change, param):
    with pytest.raises(validate.InvalidBody) as info:
        validate.chat({"model": "m", "messages": HI, **change})
    assert info.value.param == param


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"stream": False, "stream_options": None, "max_tokens": 1, "temperature": 0, "top_p": 1},
        {"stop": ["a", "b"], "n": 2, "seed": -5, "tools": [], "tool_choice": "auto"},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]},
        {"messages": [{"role": "assistant", "content": None, "tool_calls": []}]},
    ],
)
def test_chat_fields_of_the_right_type_pass(change):
    validate.chat({"model": "m", "messages": HI, **change})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "e", "input": 5}, "input"),
        ({"model": "e", "input": [[]]}, "input"),
        ({"model": "e", "input": ["a", 1]}, "input"),
        ({"model": "e"}, "input"),
        ({"model": "e", "input": "x", "encoding_format": "hex"}, "encoding_format"),
    ],
)
def test_embeddings_fields_of_the_wrong_type_name_the_field(body, param):
    with pytest.raises(validate.InvalidBody) as info:
        validate.embeddings(body)
    assert info.value.param == param


def test_the_app_answers_bad_bodies_400_in_openai_shape():
    table = ModelTable()
    table.put(Route("tiny", "tiny:1", "http://127.0.0.1:9/v1"), ModelState.READY)
    app = create_app(table, GatewayConfig(stack="demo", key=Secret(KEY)))
    headers = {"authorization": f"Bearer {KEY}"}
    with TestClient(app) as client:
        for raw in (b'{"model": "tiny", "messages": [], "temperature": NaN}', b"[" * 10_000):
            response = client.post("/v1/chat/completions", content=raw, headers=headers)
            assert response.status_code == 400
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        body = {"model": "tiny", "messages": HI, "stream": "false"}
        error = client.post("/v1/chat/completions", json=body, headers=headers).json()["error"]
        assert error["param"] == "stream" and error["type"] == "invalid_request_error"


def test_the_protocol_answers_in_openai_shape():
    raw = protocol.error_bytes(408, "too slow", "request_timeout")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and b"connection: close" in head
    assert json.loads(body) == {
        "error": {
            "message": "too slow",
            "type": "invalid_request_error",
            "param": None,
            "code": "request_timeout",
        }
    }


def test_configured_protocols_carry_their_limits():
    guarded = protocol.GuardedProtocol.configured(1.5, 2.5, 7)
    assert (guarded.head_timeout, guarded.body_timeout, guarded.max_connections) == (1.5, 2.5, 7)
    assert protocol.GuardedProtocol.max_connections == GatewaySpec().max_connections
    # One address may hold half the connections; each server keeps its own count.
    assert guarded.max_per_client.fget(guarded) == 3  # type: ignore[attr-defined]
    other = protocol.GuardedProtocol.configured(1, 1, 1)
    assert other.max_per_client.fget(other) == 1  # type: ignore[attr-defined]
    assert guarded._by_client is not other._by_client


def test_defaults_and_bounds_of_the_limits():
    spec = GatewaySpec()
    assert (spec.max_connections, spec.head_timeout, spec.body_timeout) == (1000, 10, 30)
    for bad in ({"max_connections": 0}, {"head_timeout": 0}, {"body_timeout": -1}):
        with pytest.raises(ValueError):
            GatewaySpec(**bad)


@pytest.fixture
def nofile(monkeypatch):
    """A fake open-file limit: (soft, hard), and whether raising it works."""
    limits = {"now": (1024, 4096), "raise_fails": False}

    def getrlimit(which):
        assert which == resource.RLIMIT_NOFILE
        return limits["now"]

    def setrlimit(which, value):
        if limits["raise_fails"]:
            raise ValueError("not allowed")
        limits["now"] = value

    # connection_budget imports resource when it runs (POSIX only): patch the module itself.
    monkeypatch.setattr(resource, "getrlimit", getrlimit)
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    return limits


def test_the_open_file_limit_is_raised_to_fit_the_connections(nofile):
    assert protocol.connection_budget(1000) == 1000
    assert nofile["now"] == (1000 + protocol.FD_RESERVE, 4096)


def test_the_cap_is_lowered_when_the_open_file_limit_cannot_be_raised(nofile):
    nofile["raise_fails"] = True
    assert protocol.connection_budget(1000) == 1024 - protocol.FD_RESERVE
    nofile["raise_fails"], nofile["now"] = False, (1024, 2000)
    assert protocol.connection_budget(5000) == 2000 - protocol.FD_RESERVE


def test_windows_has_no_open_file_limit_to_raise(nofile, monkeypatch):
    monkeypatch.setattr("sys.platform", "win32")
    nofile["raise_fails"] = True
    assert protocol.connection_budget(5000) == 5000
    assert nofile["now"] == (1024, 4096)  # not asked
