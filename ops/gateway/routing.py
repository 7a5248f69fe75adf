"""Hybrid routing: which models a request for a virtual model (e.g. ``auto``) goes to, in what order.

A request's features are its task (a pluggable classifier; regexes by default), its estimated
input size and whether it is private (marked with ``x-ops-private: true`` or ``metadata.private``,
or containing personal data). The first rule whose conditions hold gives the candidates, tried in
order with fallback; private requests are only ever sent to models that stay on this machine.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ops.profiles.schema import RoutingSpec, VirtualModel


@dataclass(frozen=True)
class Features:
    """What routing looks at in one request."""

    task: str
    tokens: int
    private: bool
    private_reason: str = ""


@dataclass(frozen=True)
class Decision:
    """The candidates to try, in order, and why."""

    candidates: tuple[str, ...]
    reason: str
    features: Features


class Classifier(Protocol):
    """Names the task of a request (``chat`` when nothing more specific applies)."""

    def classify(self, text: str) -> str:
        """The task of ``text``."""


class RegexClassifier:
    """The default classifier: the first task whose patterns match, else ``chat``."""

    def __init__(self, tasks: dict[str, tuple[str, ...]]):
        self.tasks = {
            task: [re.compile(p, re.IGNORECASE) for p in patterns] for task, patterns in tasks.items()
        }

    def classify(self, text: str) -> str:
        for task, patterns in self.tasks.items():
            if any(p.search(text) for p in patterns):
                return task
        return "chat"


_CLASSIFIERS: dict[str, Callable[[RoutingSpec], Classifier]] = {
    "regex": lambda spec: RegexClassifier(spec.tasks)
}


def register_classifier(name: str, factory: Callable[[RoutingSpec], Classifier]) -> None:
    """Plug in another classifier (for example one that asks a small local model)."""
    _CLASSIFIERS[name] = factory


def request_text(body: dict[str, Any]) -> str:
    """The text of the request's messages (what the classifier and the privacy patterns read)."""
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [
                c.get("text", "") for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)
            ]
    return "\n".join(parts)


@dataclass
class Router:
    """Decides routes for the profile's virtual models and counts what happened."""

    spec: RoutingSpec
    remote: Callable[[str], bool]
    classifier_name: str = "regex"
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.classifier = _CLASSIFIERS[self.classifier_name](self.spec)
        self.private_patterns = [re.compile(p) for p in self.spec.private_patterns]

    def is_virtual(self, name: str) -> bool:
        """True when ``name`` is one of the profile's virtual models."""
        return name in self.spec.models

    @property
    def names(self) -> list[str]:
        """The virtual model names."""
        return list(self.spec.models)

    def features(self, body: dict[str, Any], headers: dict[str, str]) -> Features:
        """Task, size and privacy of one request."""
        text = request_text(body)
        marked = headers.get("x-ops-private", "").lower() in ("1", "true", "yes") or bool(
            isinstance(body.get("metadata"), dict) and body["metadata"].get("private")
        )
        reason = "marked private" if marked else ""
        if not marked:
            for pattern in self.private_patterns:
                if pattern.search(text):
                    reason = "contains personal data"
                    break
        # About four characters a token for English text: enough to route by size.
        return Features(self.classifier.classify(text), len(text) // 4 + 1, bool(reason), reason)

    def decide(self, name: str, body: dict[str, Any], headers: dict[str, str]) -> Decision:
        """The candidates for a request to virtual model ``name``."""
        virtual: VirtualModel = self.spec.models[name]
        feats = self.features(body, headers)
        chosen, reason = virtual.default, "default"
        for i, rule in enumerate(virtual.rules):
            when = rule.when
            if when.task is not None and when.task != feats.task:
                continue
            if when.min_tokens is not None and feats.tokens < when.min_tokens:
                continue
            if when.private is not None and when.private != feats.private:
                continue
            chosen, reason = rule.to, f"rule {i + 1}"
            break
        if feats.private:
            kept = tuple(c for c in chosen if not self.remote(c))
            if len(kept) != len(chosen):
                reason += f"; remote routes removed ({feats.private_reason})"
            chosen = kept
        return Decision(chosen, reason, feats)
