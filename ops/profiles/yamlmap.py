"""Read a YAML file into plain data plus a map from field path to line number.

PyYAML's safe loader throws away positions and silently keeps the last of two equal
keys; profiles need both the positions (errors name the line) and duplicate detection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ops.errors import ProfileError

Loc = tuple[str | int, ...]

# Values a profile may expand to. YAML aliases (`*name`) repeat an anchor's content, so nine
# nested levels of ten aliases (a "billion laughs") expand a 1 kB file to 10^9 values; a real
# profile has a few hundred. Walking stops at this budget with a profile error, before any work.
MAX_VALUES = 20_000


@dataclass
class Located:
    """The parsed document and the line (1-based) of every field path in it."""

    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """Line of the longest prefix of ``loc`` that the document has."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None


def read_text(path: Path) -> str:
    """Read a profile file as UTF-8, with a located error for each way that can fail."""
    if not path.exists():
        raise ProfileError(
            f"{path}: no such file", hint="check the path, or run `ops profiles` to list profiles"
        )
    if path.is_dir():
        raise ProfileError(
            f"{path}: is a directory, not a profile file",
            hint=f"give a YAML file, e.g. {path / 'workshop.yaml'}",
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(
            f"{path}: cannot read: {exc.strerror}", hint="check the file's permissions"
        ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProfileError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            hint="save the file as UTF-8 (profiles are YAML text)",
        ) from None


def load(path: Path) -> Located:
    """Parse ``path`` into a :class:`Located` mapping; raise :class:`ProfileError` if it is not one."""
    text = read_text(path)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ProfileError(
            f"{path}{line}: YAML syntax error: {problem}",
            hint="check indentation and quoting near that line (a value with ':' or '#' needs quotes)",
        ) from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: YAML error: {exc}", hint="check the file is valid YAML") from None
    finally:
        loader.dispose()
    if node is None:
        raise ProfileError(
            f"{path}: the profile is empty",
            hint="a profile needs at least `models:`; copy profiles/offline.yaml to start",
        )
    if not isinstance(node, yaml.MappingNode):
        raise ProfileError(
            f"{path}:{node.start_mark.line + 1}: a profile must be a mapping of keys (models, gateway, services...)",
            hint="start the file with `models:`; see profiles/workshop.yaml",
        )
    located = Located(None)
    located.data = _walk(node, (), located, path, yaml.SafeLoader(""), _Budget(MAX_VALUES))
    return located


class _Budget:
    """Counts the values a walk has expanded; refuses more than ``left`` of them."""

    def __init__(self, left: int) -> None:
        self.left = left

    def spend(self, node: yaml.Node, path: Path) -> None:
        self.left -= 1
        if self.left < 0:
            raise ProfileError(
                f"{path}:{node.start_mark.line + 1}: the profile expands to more than {MAX_VALUES} values "
                "(YAML aliases `*name` repeat the anchor `&name` they point to, here nested)",
                hint="write the values out instead of nesting aliases; a profile needs a few hundred values",
            )


def _walk(
    node: yaml.Node, loc: Loc, out: Located, path: Path, constructor: yaml.SafeLoader, budget: _Budget
) -> Any:
    budget.spend(node, path)
    out.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        constructor.flatten_mapping(node)  # resolve `<<:` merge keys
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                raise ProfileError(
                    f"{path}:{key_node.start_mark.line + 1}: keys must be plain names, got {key!r}",
                    hint="write keys as plain words",
                )
            if key in result:
                raise ProfileError(
                    f"{path}:{key_node.start_mark.line + 1} {_dotted(loc + (key,))}: duplicate key {key!r} "
                    f"(first on line {out.lines[loc + (key,)]})",
                    hint="remove or rename one of them; YAML would silently keep only the last",
                )
            out.lines[loc + (key,)] = key_node.start_mark.line + 1
            result[key] = _walk(value_node, loc + (key,), out, path, constructor, budget)
            out.lines[loc + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, loc + (i,), out, path, constructor, budget) for i, item in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def _dotted(loc: Loc) -> str:
    """Render a field path as ``services.open-webui.ports[0]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


dotted = _dotted
