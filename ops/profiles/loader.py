"""Find a profile by name or path, parse it, validate it, and hand back typed objects."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ops import paths
from ops.errors import OpsError, ProfileError
from ops.profiles import checks, yamlmap
from ops.profiles.errors import ProfileInvalid, did_you_mean, display, from_validation
from ops.profiles.schema import Profile
from ops.settings import Settings

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedProfile:
    """A valid profile with where it came from and its resolved model folders."""

    name: str
    path: Path
    profile: Profile
    model_dirs: dict[str, Path]


@dataclass(frozen=True)
class ProfileRef:
    """A profile found on the search path (for ``ops profiles``)."""

    name: str
    path: Path
    description: str


def search_path(settings: Settings | None = None) -> list[Path]:
    """Folders searched for named profiles, first match wins."""
    settings = settings or Settings.from_env()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "ops" / "profiles"
    return [*settings.profile_path, config, paths.shipped("profiles")]


def is_path(ref: str) -> bool:
    """A reference with a slash or a YAML suffix is a path; anything else is a name."""
    return os.sep in ref or "/" in ref or ref.endswith(SUFFIXES)


def resolve(ref: str, settings: Settings | None = None) -> Path:
    """The file a profile reference (name or path) points at."""
    if is_path(ref):
        return Path(ref).expanduser()
    for folder in search_path(settings):
        for suffix in SUFFIXES:
            candidate = folder / f"{ref}{suffix}"
            if candidate.is_file():
                return candidate
    known = [p.name for p in discover(settings)]
    raise ProfileError(
        f"no profile named {ref!r}{did_you_mean(ref, known)}",
        hint=f"available: {', '.join(known) or 'none'}; or give a path to a YAML file",
    )


def discover(settings: Settings | None = None) -> list[ProfileRef]:
    """Every named profile on the search path (first of each name), with its description."""
    found: dict[str, ProfileRef] = {}
    for folder in search_path(settings):
        if not folder.is_dir():
            continue
        for file in sorted(folder.iterdir()):
            if file.suffix in SUFFIXES and file.stem not in found and file.is_file():
                found[file.stem] = ProfileRef(file.stem, file, _description(file))
    return sorted(found.values(), key=lambda r: r.name)


def _description(file: Path) -> str:
    try:
        return load_path(file).profile.description
    except ProfileError as exc:
        return f"(invalid: {exc.message})"


def load(ref: str, settings: Settings | None = None) -> LoadedProfile:
    """Load the profile ``ref`` (a name or a path); raise :class:`ProfileError` naming every problem."""
    return load_path(resolve(ref, settings), settings)


def load_path(path: Path, settings: Settings | None = None) -> LoadedProfile:
    """Parse and validate the profile file at ``path``; recipe models resolve to folders in the cache."""
    located = yamlmap.load(path)
    try:
        profile = Profile.model_validate(located.data)
    except ValidationError as exc:
        raise ProfileInvalid(from_validation(exc, path, located)) from None
    problems = checks.check(profile, path, located)
    if problems:
        raise ProfileInvalid(problems)
    name = profile.name or path.stem
    if not _valid_name(name):
        raise ProfileError(
            f"{display(path)}: the file name {path.stem!r} is not a valid stack name",
            hint="rename the file, or set `name:` in the profile (lower-case letters, digits, '-', '_', '.')",
        )
    return LoadedProfile(name, path.resolve(), profile, _model_dirs(profile, path, settings))


def _model_dirs(profile: Profile, path: Path, settings: Settings | None) -> dict[str, Path]:
    """Each local model's folder: a ``path:`` as written, a ``recipe:`` in the model cache (maybe unbuilt)."""
    dirs: dict[str, Path] = {}
    for alias, spec in profile.models.items():
        if spec.path:
            dirs[alias] = checks.model_dir(spec.path, path.parent)
        elif spec.recipe:
            dirs[alias] = checks.recipe_dir(spec.recipe, spec.precision, settings or Settings.from_env())
    return dirs


def _valid_name(name: str) -> bool:
    try:
        Profile.model_validate({"name": name, "models": {"x": {"catalog": "x"}}})
    except ValidationError:
        return False
    return True


def load_leniently(
    ref: str, settings: Settings | None = None
) -> tuple[LoadedProfile | None, OpsError | None, dict[str, str]]:
    """Load a profile; a missing model folder is set aside (doctor reports it) rather than fatal.

    A profile whose only problems are its model folders still describes a stack that may be
    running (its host loaded the model before the folder went): `ops doctor` checks it and
    `ops down` takes it down. Returns (profile or None, the error that stopped it, folder problems).
    """
    from ops.profiles.yamlmap import load as load_yaml

    try:
        return load(ref, settings), None, {}
    except ProfileInvalid as exc:
        folders = {
            p.field.split(".")[1]: f"{p.message} ({p.hint})" for p in exc.problems if _is_folder(p.field)
        }
        if len(folders) != len(exc.problems):
            return None, exc, {}
        path = resolve(ref, settings)
        profile = Profile.model_validate(load_yaml(path).data)
        dirs = _model_dirs(profile, path, settings)
        return LoadedProfile(profile.name or path.stem, path.resolve(), profile, dirs), None, folders
    except OpsError as exc:
        return None, exc, {}


def _is_folder(field: str) -> bool:
    parts = field.split(".")
    return len(parts) == 3 and parts[0] == "models" and parts[2] == "path"
