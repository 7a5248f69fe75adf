"""Rendering profile problems: ``file:line field.path: what is wrong`` plus a fix."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ops.errors import ProfileError
from ops.profiles.yamlmap import Loc, Located, dotted


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a profile, located."""

    path: Path
    line: int | None
    field: str
    message: str
    hint: str

    def __str__(self) -> str:
        where = f"{display(self.path)}:{self.line}" if self.line else display(self.path)
        return f"{where} {self.field}: {self.message}"


class ProfileInvalid(ProfileError):
    """A profile with one or more problems; the first is the message, all are in ``problems``."""

    def __init__(self, problems: list[Problem]):
        first = problems[0]
        more = f" (and {len(problems) - 1} more; `ops validate` lists all)" if len(problems) > 1 else ""
        super().__init__(str(first) + more, hint=first.hint)
        self.problems = problems


def display(path: Path) -> str:
    """``path`` relative to the working directory when under it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``word``, else empty."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_TYPE_WORDS = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "missing": "required field is missing",
}


def from_validation(exc: ValidationError, path: Path, located: Located) -> list[Problem]:
    """Turn pydantic's errors into located problems with a fix each."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if isinstance(p, int | str))
        loc = _data_loc(loc, located.data)
        kind = error["type"]
        given = error.get("input")
        if kind == "extra_forbidden":
            key = loc[-1]
            valid = _valid_keys(loc[:-1])
            message = f"unknown key {key!r}{did_you_mean(str(key), valid)}"
            hint = f"valid keys here: {', '.join(valid)}" if valid else "remove it"
        elif kind == "missing":
            message = f"required key {loc[-1]!r} is missing"
            hint = f"add `{loc[-1]}:`; see profiles/workshop.yaml for an example"
        elif kind == "literal_error":
            expected = error.get("ctx", {}).get("expected", "")
            message = f"expected one of {expected}, got {given!r}"
            hint = f"use one of {expected}"
        elif kind in _TYPE_WORDS:
            message = f"{_TYPE_WORDS[kind]}, got {_describe(given)}"
            hint = "fix the value's type (quote strings, leave numbers and true/false unquoted)"
        elif kind == "value_error":
            message = str(error.get("ctx", {}).get("error", error["msg"]))
            hint = _hint_for(loc)
        else:
            message = error["msg"][0].lower() + error["msg"][1:] + f", got {_describe(given)}"
            hint = _hint_for(loc)
        problems.append(Problem(path, located.line_of(loc), dotted(loc), message, hint))
    return problems


def _describe(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value) if isinstance(value, str) else str(value)


def _hint_for(loc: Loc) -> str:
    hints = {
        "ports": 'write ports as "HOST:CONTAINER" or "127.0.0.1:HOST:CONTAINER", e.g. "3000:8080"',
        "volumes": 'write volumes as "NAME:/absolute/container/path" (append ":ro" for read-only)',
        "bind": 'use IP addresses such as "127.0.0.1", or "stack-gateway" for the stack network\'s gateway',
        "models": "give each model `catalog: ALIAS` or `path: FOLDER` (e.g. bundled:tiny-fp32)",
        "name": "use lower-case letters, digits, '-', '_' or '.'",
        "services": "use lower-case letters, digits, '-', '_' or '.' in service names",
        "http": "write the probe path starting with '/', e.g. /health",
    }
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if last in hints:
        return hints[last]
    if loc[:1] == ("models",):  # a rule on the whole model entry, e.g. models.tiny
        return hints["models"]
    return "see profiles/workshop.yaml for a valid example"


def _data_loc(loc: Loc, data: object) -> Loc:
    """Drop the parts pydantic adds for unions (``str``, ``int``...) that are not in the data."""
    kept: list[str | int] = []
    node = data
    for part in loc:
        # Two branches, not one `or`: the type checker then knows ``part`` indexes a list as an int.
        if isinstance(node, dict) and part in node:  # noqa: SIM114
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict | list):
            kept.append(part)  # e.g. a missing or unknown key: keep it, stop descending
            node = None
            continue
        else:
            continue
        kept.append(part)
    return tuple(kept)


def _valid_keys(loc: Loc) -> list[str]:
    """The keys allowed at ``loc`` in the profile schema."""
    from ops.profiles.schema import Profile

    annotation: object = Profile
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not isinstance(part, str) or part not in annotation.model_fields:
                return []
            annotation = annotation.model_fields[part].annotation
            continue
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is dict and args:
            annotation = args[1]
        elif origin in (tuple, list) and args:
            annotation = args[0]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: object) -> object:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _unwrap(arg)
    return annotation
