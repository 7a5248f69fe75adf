"""Scoring for ``ops eval``: normalise an answer, then check it against the acceptable ones.

Both the model's answer and each expected answer go through :func:`normalise`, so the rules
apply the same way to both sides: ``"Paris."``, ``"the city of PARIS"`` and ``"Paris, France"``
all contain ``paris``; ``"Seven days"`` contains ``7``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

ARTICLES = frozenset({"a", "an", "the"})
_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
)
NUMBER_WORDS = {word: str(value) for value, word in enumerate(_NUMBERS.split())}

# A comma between digit groups is a thousands separator: 3,300 is 3300.
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
# "v0.12.4" is version 0.12.4.
_VERSION = re.compile(r"\bv(?=\d)")
# A possessive 's goes, so "Shakespeare's" still names Shakespeare.
_POSSESSIVE = re.compile(r"['\u2019]s\b")
# Everything but letters, digits and whitespace becomes a space, except a point between two digits
# (3.5, 0.12.4): the number would change without it.
_PUNCTUATION = re.compile(r"(?!(?<=\d)\.(?=\d))[^\w\s]|_")


def normalise(text: str) -> str:
    """Lower case, accents and punctuation gone, articles dropped, number words as digits, one space."""
    text = unicodedata.normalize("NFKD", text)  # also turns H₂O into H2O
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _POSSESSIVE.sub("", _VERSION.sub("", _THOUSANDS.sub("", text)))
    words = _PUNCTUATION.sub(" ", text).split()
    return " ".join(NUMBER_WORDS.get(w, w) for w in words if w not in ARTICLES)


def symbols_only(text: str) -> bool:
    """``text`` has no letter or digit but is not blank (``********``): normalising would leave nothing."""
    return bool(text.strip()) and not any(c.isalnum() for c in text)


def _literal(text: str) -> str:
    return " ".join(text.lower().split())


def contains(answer: str, expected: str) -> bool:
    """``expected`` appears in ``answer`` as whole words (both normalised); one made of symbols, as written."""
    if symbols_only(expected):
        return _literal(expected) in _literal(answer)
    wanted = normalise(expected)
    return bool(wanted) and f" {wanted} " in f" {normalise(answer)} "


def exact(answer: str, expected: str) -> bool:
    """``answer`` is ``expected`` once both are normalised (one made of symbols: as written)."""
    if symbols_only(expected):
        return _literal(answer) == _literal(expected)
    wanted = normalise(expected)
    return bool(wanted) and normalise(answer) == wanted


def is_correct(answer: str, expected: Iterable[str], match: str = "contains") -> bool:
    """Any of the ``expected`` answers matches ``answer`` the way ``match`` says."""
    check = exact if match == "exact" else contains
    return any(check(answer, e) for e in expected)


def cites(sources: Iterable[str], document: str) -> bool:
    """The first of ``sources`` (the app's cited files, best first) is ``document``, in any folder."""
    first = next(iter(sources), None)
    if not first:
        return False
    first, document = first.replace("\\", "/"), document.replace("\\", "/").lstrip("/")
    return first == document or first.endswith("/" + document)
