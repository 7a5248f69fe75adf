"""Routing decisions and their profile validation, without any upstream."""

from __future__ import annotations

import pytest

from ops.cli import main
from ops.gateway.routing import Router
from ops.profiles.schema import RoutingSpec

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
