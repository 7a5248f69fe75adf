"""Routing decisions and their profile validation, without any upstream."""

from __future__ import annotations

import pytest

from ops.cli import main
from ops.gateway.routing import Router
from ops.profiles.schema import ModelSpec, RoutingSpec

SPEC = RoutingSpec.model_validate(
    {
        "models": {
            "auto": {
                "rules": [
                    {"when": {"private": True}, "to": ["cloud", "local"]},
                    {"when": {"task": "code"}, "to": ["coder"]},
                    {"when": {"min_tokens": 100}, "to": ["cloud"]},
                ],
                "default": ["local"],
            }
        }
    }
)


def decide(text: str, headers=None):
    router = Router(SPEC, remote=lambda alias: alias == "cloud")
    return router.decide("auto", {"messages": [{"role": "user", "content": text}]}, headers or {})


@pytest.mark.parametrize(
    ("text", "headers", "candidates", "task"),
    [
        ("Hello there", {}, ("local",), "chat"),
        ("```python\nprint(1)\n```", {}, ("coder",), "code"),
        ("Why does my SQL query fail?", {}, ("coder",), "code"),
        ("word " * 200, {}, ("cloud",), "chat"),
        ("mail me at a.b@example.com", {}, ("local",), "chat"),
        ("card 4111 1111 1111 1111", {}, ("local",), "chat"),
        ("IBAN DE44 5001 0517 5407 3249 31", {}, ("local",), "chat"),
        ("nothing personal", {"x-ops-private": "true"}, ("local",), "chat"),
    ],
)
def test_decisions(text, headers, candidates, task):
    decision = decide(text, headers)
    assert decision.candidates == candidates and decision.features.task == task


def test_private_never_keeps_a_remote_candidate_even_if_a_rule_names_only_remote():
    spec = RoutingSpec.model_validate({"models": {"auto": {"default": ["cloud"]}}})
    router = Router(spec, remote=lambda alias: alias == "cloud")
    decision = router.decide(
        "auto", {"messages": [{"role": "user", "content": "x"}], "metadata": {"private": True}}, {}
    )
    assert decision.candidates == () and "remote routes removed" in decision.reason


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        (
            "{models: {auto: {default: [tinny]}}}",
            "gateway.routing.models.auto.default[0]: unknown model 'tinny' (did you mean 'tiny'?)",
        ),
        (
            "{models: {auto: {default: [tiny], rules: [{when: {task: poetry}, to: [tiny]}]}}}",
            "unknown task 'poetry'",
        ),
        ("{models: {tiny: {default: [tiny]}}}", "virtual model 'tiny' hides a model"),
        ("{tasks: {code: ['(']}}", "is not a valid regular expression"),
        ("{models: {auto: {default: []}}}", "gateway.routing.models.auto.default"),
    ],
)
def test_bad_routing_profiles(tmp_path, capsys, routing, message):
    path = tmp_path / "r.yaml"
    path.write_text(f"models: {{tiny: {{path: bundled:tiny-fp32}}}}\ngateway:\n  routing: {routing}\n")
    assert main(["validate", str(path)]) == 2
    assert message in capsys.readouterr().err


def features(body: dict, headers=None):
    return Router(SPEC, remote=lambda alias: alias == "cloud").features(body, headers or {})


@pytest.mark.parametrize(
    "text",
    [
        "call 555.123.4567",
        "call (555) 123-4567",
        "call ５５５.１２３.４５６７",  # full-width digits
        "call 555\u200b123\u200b4567",  # zero-width spaces between the groups
        "call +49 170 1234567",
        "call 0170 1234567",
        "mail anna＠example.org",  # full-width at sign
        "mail anna\u200b@exam\u2060ple.org",  # zero-width space, word joiner
        "mail anna﹫example.org",  # small commercial at
        "SSN 123456789",
        "SSN 123 45 6789",
        "SSN 123\u00ad-45-6789",  # soft hyphen
        "card 4111111111111111",
        "card 3782 822463 10005",
    ],
)
def test_personal_data_in_its_common_forms_is_private(text):
    feats = features({"messages": [{"role": "user", "content": text}]})
    assert feats.private and feats.private_reason == "contains personal data", text


@pytest.mark.parametrize(
    "text",
    [
        "What happened between 1990 and 2000?",
        "from 1990 - 2000",
        "the years 2019 2020 2021 2022",
        "the meeting on 2024-01-15 at 12:30",
        "It costs $1,299.99, or 1.299,00 €",
        "A budget of 1.000.000.000 euros, 330000000 people",
        "priced at 12.99 or 129.99",
        "version 10.0.19041.1234 at 192.168.1.100",
        "ISBN 978-3-16-148410-0, page 1234",
    ],
)
def test_years_dates_prices_and_ordinary_numbers_are_not_personal_data(text):
    assert not features({"messages": [{"role": "user", "content": text}]}).private, text


@pytest.mark.parametrize(
    "body",
    [
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [{"function": {"name": "mail", "arguments": '{"to": "a.b@example.com"}'}}],
                }
            ]
        },
        {"messages": [{"role": "user", "name": "anna.b@example.com", "content": "hi"}]},
        {"messages": [{"role": "tool", "content": [{"type": "text", "text": "tel 555-123-4567"}]}]},
        {"input": ["a report", "for 555.123.4567"]},  # embeddings
        {"input": "SSN 123-45-6789"},
        {"messages": [{"role": "user", "content": "hi"}], "user": "anna@example.org"},
    ],
    ids=["tool-call-arguments", "name", "text-part", "embeddings-list", "embeddings-string", "other-field"],
)
def test_every_string_of_the_request_is_read(body):
    feats = features(body)
    assert feats.private and feats.private_reason == "contains personal data"


@pytest.mark.parametrize(
    ("part", "reason"),
    [
        ({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}, "image_url"),
        ({"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}, "input_audio"),
        ({"type": "file", "file": {"file_data": "JVBERi0x"}}, "file"),
    ],
)
def test_parts_that_cannot_be_read_are_private(part, reason):
    content = [{"type": "text", "text": "what is this?"}, part]
    feats = features({"messages": [{"role": "user", "content": content}]})
    assert feats.private and reason in feats.private_reason


def test_token_ids_cannot_be_read_so_they_are_private():
    assert features({"input": [[9906, 1917]]}).private and not features({"input": ["Hello world"]}).private


def test_a_model_is_local_only_when_this_host_serves_it_or_the_profile_says_so():
    assert ModelSpec(url="http://127.0.0.1:9000/v1").leaves_machine  # a tunnel, for all we know
    assert ModelSpec(url="http://localhost:9000/v1").leaves_machine
    assert ModelSpec(url="https://api.example.com/v1").leaves_machine
    assert not ModelSpec(url="http://127.0.0.1:9000/v1", remote=False).leaves_machine
    assert not ModelSpec(catalog="phi-4-mini").leaves_machine
    assert not ModelSpec(path="bundled:tiny-fp32").leaves_machine
    assert not ModelSpec(recipe="smollm2-135m-instruct").leaves_machine
