"""Label every stage of a recipe's Dockerfile, so that what a build leaves behind can be found.

Docker's legacy builder (the one used without BuildKit) keeps the last image of every stage but the
final one: untagged, and with no label but those inherited from the base image (``labels=`` of a
build reaches the final stage only). The builder therefore hands the daemon a Dockerfile with a
``LABEL ops.recipe=<recipe> ops.stage=<stage>`` after each ``FROM``, and removes the stages' images
after a successful build (:func:`ops.images.build.build_recipe`); ``ops images prune`` finds the
leftovers of failed or interrupted builds by the same label.
"""

from __future__ import annotations

import json
import re

from ops import labels

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$")
_FROM = re.compile(r"^\s*FROM\s", re.IGNORECASE)
_AS = re.compile(r"\sAS\s+([A-Za-z0-9][A-Za-z0-9_.-]*)\s*$", re.IGNORECASE)


def label_stages(dockerfile: str, recipe: str) -> str:
    """``dockerfile`` with a ``LABEL`` naming ``recipe`` and the stage after every ``FROM``.

    A stage is named by its ``AS`` name, else by its index (``0``, ``1``...). Nothing else in the
    file changes; the build log shows the extra ``LABEL`` step of each stage.
    """
    lines = dockerfile.splitlines(keepends=True)
    after: dict[int, str] = {}  # line index -> the stage name whose FROM ends there
    for end, instruction in _instructions(dockerfile):
        if _FROM.match(instruction):
            match = _AS.search(instruction)
            after[end] = match.group(1) if match else str(len(after))
    out = []
    for index, line in enumerate(lines):
        out.append(line)
        if index in after:
            ending = line[len(line.rstrip("\r\n")) :]
            if not ending:  # a last line without a line break
                ending = "\n"
                out.append(ending)
            out.append(_label_line(recipe, after[index]) + ending)
    return "".join(out)


def _label_line(recipe: str, stage: str) -> str:
    # JSON strings are valid Dockerfile label values and quote whatever a folder name holds.
    return f"LABEL {labels.RECIPE}={json.dumps(recipe)} {labels.STAGE}={json.dumps(stage)}"


def _escape_char(dockerfile: str) -> str:
    """The escape character: ``\\`` unless a parser directive at the top says otherwise."""
    for line in dockerfile.splitlines():
        match = _DIRECTIVE.match(line.strip())
        if not match:
            break
        if match.group(1).lower() == "escape":
            return match.group(2)
    return "\\"


def stage_end_commands(dockerfile: str) -> list[str]:
    """The shell command of each non-final stage's last instruction, when that is a ``RUN``.

    Images that builds made before stages were labelled are recognised by it: the legacy
    builder records the command that made an image, and a stage's leftover image is made by
    the stage's last instruction. Whitespace is collapsed (see :func:`normalized_command`).
    """
    stages: list[list[str]] = []
    for _end, instruction in _instructions(dockerfile):
        if _FROM.match(instruction):
            stages.append([])
        elif stages:
            stages[-1].append(instruction)
    commands = []
    for body in stages[:-1]:
        if body and (match := re.match(r"^\s*RUN\s+(?!\[)(.*)$", body[-1], re.IGNORECASE | re.DOTALL)):
            commands.append(normalized_command(match.group(1)))
    return commands


def normalized_command(command: str) -> str:
    """``command`` with every run of whitespace made one space, for comparing across line breaks."""
    return " ".join(command.split())


def _instructions(dockerfile: str) -> list[tuple[int, str]]:
    """The logical instructions, each with the index of its last line: continuation lines joined,
    comments and blank lines left out (the parser drops them inside a continuation too)."""
    escape = _escape_char(dockerfile)
    result: list[tuple[int, str]] = []
    current: str | None = None
    for index, line in enumerate(dockerfile.splitlines()):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        text = line.rstrip()
        continues = text.endswith(escape)
        text = text[:-1] if continues else text
        current = text if current is None else current + text
        if not continues:
            result.append((index, current))
            current = None
    if current is not None:
        result.append((len(dockerfile.splitlines()) - 1, current))
    return result
