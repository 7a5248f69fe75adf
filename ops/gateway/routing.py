"""Hybrid routing: which models a request for a virtual model (e.g. ``auto``) goes to, in what order.

A request's features are its task (a pluggable classifier; regexes by default), its estimated
input size and whether it is private (marked with ``x-ops-private: true`` or ``metadata.private``,
containing personal data anywhere in its body, or a part that cannot be checked: an image, audio,
a file, token ids). The first rule whose conditions hold gives the candidates, tried in order with
fallback; private requests are only ever sent to models that stay on this machine (the gateway
refuses a private request to a remote model on every other path too: see :class:`Privacy`).
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ops.profiles.schema import DEFAULT_PRIVATE_PATTERNS, RoutingSpec, VirtualModel


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


#: Header values that mark a request private.
_MARKED = ("1", "true", "yes", "on")
#: Content parts that are text; any other part (image_url, input_audio, file...) cannot be checked.
_TEXT_PARTS = ("text", "input_text", "output_text", "refusal")


@functools.cache
def _invisible() -> re.Pattern[str]:
    """Every invisible format character (Unicode category Cf: zero-width spaces and joiners, soft hyphen...)."""
    chars = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    return re.compile("[" + "".join(re.escape(c) for c in chars) + "]")


def normalise(text: str) -> str:
    """``text`` as the privacy patterns read it: NFKC (full-width ``＠`` and digits become ASCII), invisible
    format characters removed (a zero-width space no longer splits a number)."""
    if text.isascii():
        return text
    return _invisible().sub("", unicodedata.normalize("NFKC", text))


def request_strings(body: object) -> Iterator[str]:
    """Every string in a JSON body, keys included: messages, tool call arguments, names, ``input``..."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for key, value in item.items():
                if isinstance(key, str):
                    yield key
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _unreadable(body: dict[str, Any]) -> str:
    """Why part of the request cannot be checked for personal data ('' when all of it can)."""
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type", "text") not in _TEXT_PARTS:
                return f"contains a non-text part ({str(part.get('type'))[:40]})"
    given = body.get("input")
    if isinstance(given, list) and any(
        isinstance(x, int) or (isinstance(x, list) and x and all(isinstance(t, int) for t in x))
        for x in given
    ):
        return "contains token ids, which cannot be checked for personal data"
    return ""


@dataclass
class Privacy:
    """Tells whether a request is private: marked so, or containing data that must not leave the machine."""

    patterns: tuple[str, ...] = DEFAULT_PRIVATE_PATTERNS
    compiled: list[re.Pattern[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.compiled = [re.compile(p) for p in self.patterns]

    def reason(self, body: dict[str, Any], headers: dict[str, str]) -> str:
        """Why the request is private, or '' when it is not."""
        marked = headers.get("x-ops-private", "").strip().lower() in _MARKED
        metadata = body.get("metadata")
        if marked or (isinstance(metadata, dict) and metadata.get("private")):
            return "marked private"
        unreadable = _unreadable(body)
        if unreadable:
            return unreadable
        text = "\n".join(normalise(s) for s in request_strings(body))
        if any(p.search(text) for p in self.compiled):
            return "contains personal data"
        return ""


@dataclass
class Router:
    """Decides routes for the profile's virtual models and counts what happened."""

    spec: RoutingSpec
    remote: Callable[[str], bool]
    classifier_name: str = "regex"
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.classifier = _CLASSIFIERS[self.classifier_name](self.spec)
        self.privacy = Privacy(self.spec.private_patterns)

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
        reason = self.privacy.reason(body, headers)
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
