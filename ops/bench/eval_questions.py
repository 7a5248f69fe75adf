"""The question sets of ``ops eval``: YAML files of questions with their acceptable answers.

A file is a YAML list of items; each item has ``id``, ``kind`` (``fact``, ``extraction`` or
``rag``), ``question``, ``expected`` (a list of acceptable answers) and optionally ``match``
(``contains``, the default, or ``exact``); a ``rag`` item also names the ``source`` document the
answer is in. The built-in sets are every ``ops/evals/*.yaml`` (shipped inside the package).
Each item is validated at the edge (pydantic, unknown keys refused) and a bad one is reported as
one line naming the file, the line and the item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from ops.bench.eval_score import normalise, symbols_only
from ops.errors import UsageError
from ops.paths import PACKAGE
from ops.profiles.errors import did_you_mean, display

BUILTIN_DIR = PACKAGE / "evals"
KINDS = ("fact", "extraction", "rag")
KEYS = ("id", "kind", "question", "expected", "match", "source")
ITEM_HINT = (
    "each item needs id, kind, question and expected (a list of answers); match and source are optional"
)


@dataclass(frozen=True)
class Question:
    """One question of a set, validated; ``file`` and ``line`` say where it was written."""

    id: str
    kind: str
    question: str
    expected: tuple[str, ...]
    match: str = "contains"
    source: str | None = None
    file: str = ""
    line: int = 0


class _Item(BaseModel):
    """The schema of one item, as written in a file."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, str_strip_whitespace=True)

    id: str = Field(min_length=1)
    kind: Literal["fact", "extraction", "rag"]
    question: str = Field(min_length=1)
    expected: list[str] = Field(min_length=1)
    match: Literal["contains", "exact"] = "contains"
    source: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> _Item:
        for answer in self.expected:
            if not normalise(answer) and not symbols_only(answer):
                raise ValueError(
                    f"expected: {answer!r} is empty once normalised (articles and punctuation go)"
                )
        if self.kind == "rag" and self.source is None:
            raise ValueError("source: a rag item names the document that holds the answer")
        if self.kind != "rag" and self.source is not None:
            raise ValueError(f"source: only rag items have a source, this one is {self.kind}")
        return self


def builtin_files() -> tuple[Path, ...]:
    """The shipped question sets, by name."""
    return tuple(sorted(BUILTIN_DIR.glob("*.yaml")))


def load(paths: list[Path] | tuple[Path, ...] | None = None) -> tuple[Question, ...]:
    """Every question of ``paths`` (default: the built-in sets); ids are unique across all of them."""
    questions: list[Question] = []
    first: dict[str, Question] = {}
    for path in builtin_files() if paths is None else paths:
        for question in load_file(path):
            if question.id in first:
                seen = first[question.id]
                raise UsageError(
                    f"{question.file}:{question.line} item {question.id}: duplicate id {question.id!r} "
                    f"(first at {seen.file}:{seen.line})",
                    hint="give every question its own id",
                )
            first[question.id] = question
            questions.append(question)
    if not questions:
        raise UsageError("no questions to ask", hint=f"add a YAML list of questions to {BUILTIN_DIR}")
    return tuple(questions)


def load_file(path: Path) -> list[Question]:
    """The questions of one file; a problem raises :class:`UsageError` naming file, line and item."""
    name = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}", hint="check the path") from None
    except UnicodeDecodeError:
        raise UsageError(f"{name}: not UTF-8 text", hint="save the question file as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise UsageError(
            f"{name}{f':{mark.line + 1}' if mark else ''}: not valid YAML: {exc.problem or exc.context}",
            hint="check the indentation, and quote a question that holds ': ' or '#'",
        ) from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{name}: not valid YAML: {exc}".splitlines()[0], hint="check the file") from None
    if node is None or (isinstance(node, yaml.SequenceNode) and not node.value):
        raise UsageError(f"{name}: no questions in the file", hint=f"a YAML list of items; {ITEM_HINT}")
    if not isinstance(node, yaml.SequenceNode):
        raise UsageError(
            f"{name}:{node.start_mark.line + 1}: expected a list of questions",
            hint=f"start each item with '- id: ...'; {ITEM_HINT}",
        )
    questions = []
    seen: dict[str, int] = {}
    for index, item in enumerate(node.value, start=1):
        question = _item(name, index, item)
        if question.id in seen:
            raise UsageError(
                f"{name}:{question.line} item {question.id}: duplicate id {question.id!r} (first on line {seen[question.id]})",
                hint="give every question its own id",
            )
        seen[question.id] = question.line
        questions.append(question)
    return questions


def _item(name: str, index: int, node: yaml.Node) -> Question:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise UsageError(f"{name}:{line} item #{index}: expected a mapping of keys", hint=ITEM_HINT)
    lines: dict[str, int] = {}
    data: dict = {}
    for key_node, value_node in node.value:
        key = str(yaml.SafeLoader("").construct_object(key_node, deep=True))
        if key in lines:
            raise UsageError(
                f"{name}:{key_node.start_mark.line + 1} item {_label(data, index)}: duplicate key {key!r}",
                hint="remove one of them; YAML would silently keep only the last",
            )
        lines[key] = key_node.start_mark.line + 1
        data[key] = yaml.SafeLoader("").construct_object(value_node, deep=True)
    try:
        item = _Item.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        where = f"{name}:{lines.get(field, line)} item {_label(data, index)}"
        message, hint = _describe(error, field)
        raise UsageError(f"{where}: {message}", hint=hint) from None
    return Question(
        id=item.id,
        kind=item.kind,
        question=item.question,
        expected=tuple(item.expected),
        match=item.match,
        source=item.source,
        file=name,
        line=line,
    )


def _label(data: dict, index: int) -> str:
    """An item's id when it has a usable one, else its position (``#3``)."""
    value = data.get("id")
    return str(value) if isinstance(value, str | int) and str(value).strip() else f"#{index}"


def _describe(error: ErrorDetails, field: str) -> tuple[str, str]:
    """A one-line message and a hint for the first pydantic error of an item."""
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        return f"missing key {field!r}", ITEM_HINT
    if kind == "extra_forbidden":
        return f"unknown key {field!r}{did_you_mean(field, KEYS)}", f"valid keys: {', '.join(KEYS)}"
    if field == "kind":
        return f"kind: unknown kind {value!r}", f"valid kinds: {', '.join(KINDS)}"
    if field == "match":
        return f"match: unknown match {value!r}", "valid matches: contains (the default), exact"
    if field == "expected" and kind == "too_short":
        return "expected: empty list", "give at least one acceptable answer"
    if field == "expected" and kind in ("list_type", "string_type"):
        return (
            "expected: a list of acceptable answers",
            'e.g. expected: [Paris]  or  expected: ["7", "seven"]',
        )
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, "), ITEM_HINT
    return f"{field}: {error['msg'].lower()}, got {value!r}", ITEM_HINT
