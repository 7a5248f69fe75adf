"""Rules that span fields: kinds, dependencies, volumes, host ports, aliases, model folders."""

from __future__ import annotations

from pathlib import Path

from ops import paths, services
from ops.profiles.errors import Problem, did_you_mean
from ops.profiles.mappings import PortMapping
from ops.profiles.schema import Profile
from ops.profiles.yamlmap import Loc, Located, dotted

BUNDLED_PREFIX = "bundled:"


def check(profile: Profile, path: Path, located: Located) -> list[Problem]:
    """Every cross-field problem in ``profile``, in file order."""
    problems: list[Problem] = []

    def add(loc: Loc, message: str, hint: str) -> None:
        problems.append(Problem(path, located.line_of(loc), dotted(loc), message, hint))

    _kinds(profile, add)
    _dependencies(profile, add)
    _volumes(profile, add)
    _ports(profile, add)
    _aliases(profile, add)
    _routing(profile, add)
    _model_folders(profile, path.parent, add)
    _recipes(profile, add)
    return sorted(problems, key=lambda p: p.line or 0)


def model_dir(spec_path: str, profile_dir: Path) -> Path:
    """The folder a model's ``path:`` names: ``bundled:NAME``, ``~/x``, absolute, or relative to the profile."""
    if spec_path.startswith(BUNDLED_PREFIX):
        return paths.bundled_model(spec_path[len(BUNDLED_PREFIX) :])
    return host_path(spec_path, profile_dir)


def host_path(value: str, profile_dir: Path) -> Path:
    """A path the profile writes: ``~/x``, absolute, or relative to the profile's folder."""
    folder = Path(value).expanduser()
    return folder if folder.is_absolute() else (profile_dir / folder).resolve()


def _kinds(profile: Profile, add) -> None:
    valid = services.names()
    for name, service in profile.services.items():
        if service.kind not in valid:
            add(
                ("services", name, "kind"),
                f"unknown service kind {service.kind!r}{did_you_mean(service.kind, valid)}",
                f"valid kinds: {', '.join(valid)}",
            )
        elif services.get(service.kind).needs_image and not service.image and not _builds(service):
            add(
                ("services", name, "kind"),
                f"kind {service.kind!r} has no default image",
                "add `image: NAME:TAG` to the service, or `build: {context: FOLDER}` to build one",
            )


def _builds(service) -> bool:
    return service.build is not None and service.build.context is not None


def _dependencies(profile: Profile, add) -> None:
    known = list(profile.services)
    for name, service in profile.services.items():
        for i, target in enumerate(service.depends_on):
            if target not in profile.services:
                add(
                    ("services", name, "depends_on", i),
                    f"unknown service {target!r}{did_you_mean(target, known)}",
                    f"services in this profile: {', '.join(known) or 'none'}",
                )
    cycle = _find_cycle(
        {n: [d for d in s.depends_on if d in profile.services] for n, s in profile.services.items()}
    )
    if cycle:
        add(
            ("services", cycle[0], "depends_on"),
            f"dependency cycle: {' -> '.join(cycle)}",
            "remove one of these depends_on entries; services must start in some order",
        )


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle in ``graph`` as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


def _volumes(profile: Profile, add) -> None:
    declared = list(profile.volumes)
    for name, service in profile.services.items():
        targets: dict[str, int] = {}
        for i, mount in enumerate(service.volumes):
            if not mount.is_bind and mount.source not in profile.volumes:
                add(
                    ("services", name, "volumes", i),
                    f"volume {mount.source!r} is not declared{did_you_mean(mount.source, declared)}",
                    f"declare it under the top-level `volumes:` (e.g. `volumes: {{{mount.source}: {{}}}}`)",
                )
            if mount.target in targets:
                add(
                    ("services", name, "volumes", i),
                    f"{mount.target} is mounted twice (also volumes[{targets[mount.target]}])",
                    "mount each container path once",
                )
            targets[mount.target] = i


def _overlaps(ip_a: str, ip_b: str) -> bool:
    return ip_a == ip_b or "0.0.0.0" in (ip_a, ip_b)


def _ports(profile: Profile, add) -> None:
    gateway_port = profile.gateway.port
    seen: list[tuple[str, int, str, Loc]] = []
    for name, service in profile.services.items():
        published: list[tuple[Loc, PortMapping, str]] = []
        if service.ports is not None:
            published = [(("services", name, "ports", i), p, "") for i, p in enumerate(service.ports)]
        elif service.kind in services.names():  # an unknown kind is reported by _kinds
            # A kind's default port clashes as much as a written one; it is reported at the kind.
            why = f" (the default of kind {service.kind}; set `ports:` to move it)"
            published = [
                (("services", name, "kind"), p, why) for p in services.get(service.kind).default_ports
            ]
        for loc, port, why in published:
            if port.host_port == gateway_port and port.protocol == "tcp":
                add(
                    loc,
                    f"host port {port.host_port} is the gateway's port{why}",
                    "pick another host port, or move `gateway.port`",
                )
                continue
            for ip, number, proto, other in seen:
                if number == port.host_port and proto == port.protocol and _overlaps(ip, port.host_ip):
                    add(
                        loc,
                        f"host port {port.host_port} is already used by {dotted(other)}{why}",
                        "give each published port its own host port",
                    )
                    break
            seen.append((port.host_ip, port.host_port, port.protocol, loc))
        health = service.health
        if health is not None and health.port is not None:
            container_ports = sorted({p.container_port for _loc, p, _why in published})
            if health.port not in container_ports:
                add(
                    ("services", name, "health", "port"),
                    f"health.port {health.port} is not a published container port",
                    f"published container ports: {', '.join(map(str, container_ports)) or 'none'}; "
                    "the probe runs from this machine, so it needs a published port",
                )


def _aliases(profile: Profile, add) -> None:
    models = list(profile.models)
    for alias, target in profile.gateway.aliases.items():
        if target not in profile.models:
            add(
                ("gateway", "aliases", alias),
                f"alias {alias!r} points at unknown model {target!r}{did_you_mean(target, models)}",
                f"models in this profile: {', '.join(models)}",
            )
        elif alias in profile.models and alias != target:
            add(
                ("gateway", "aliases", alias),
                f"alias {alias!r} hides the model of the same name",
                "rename the alias",
            )


def _routing(profile: Profile, add) -> None:
    models = list(profile.models)
    for name, virtual in profile.gateway.routing.models.items():
        base: Loc = ("gateway", "routing", "models", name)
        if name in profile.models or name in profile.gateway.aliases:
            add(
                base,
                f"virtual model {name!r} hides a model or alias of the same name",
                "rename it, e.g. `auto`",
            )
        targets = [(base + ("default", i), t) for i, t in enumerate(virtual.default)]
        for r, rule in enumerate(virtual.rules):
            targets += [(base + ("rules", r, "to", i), t) for i, t in enumerate(rule.to)]
            if (
                rule.when.task
                and rule.when.task not in profile.gateway.routing.tasks
                and rule.when.task != "chat"
            ):
                add(
                    base + ("rules", r, "when", "task"),
                    f"unknown task {rule.when.task!r}",
                    f"tasks: chat, {', '.join(profile.gateway.routing.tasks)} (add patterns under routing.tasks)",
                )
        for loc, target in targets:
            if target not in profile.models:
                add(
                    loc,
                    f"unknown model {target!r}{did_you_mean(target, models)}",
                    f"models in this profile: {', '.join(models)}",
                )


def _recipes(profile: Profile, add) -> None:
    from ops.errors import UsageError
    from ops.models import recipes

    try:
        known = recipes.all_recipes()
    except UsageError as exc:  # a broken user recipe file: say so on the first model that names a recipe
        for name, spec in profile.models.items():
            if spec.recipe:
                add(("models", name, "recipe"), exc.message, exc.hint or "")
                return
        return
    for name, spec in profile.models.items():
        if spec.recipe is None:
            continue
        if spec.recipe not in known:
            add(
                ("models", name, "recipe"),
                f"unknown model recipe {spec.recipe!r}{did_you_mean(spec.recipe, list(known))}",
                f"known recipes: {', '.join(sorted(known))} (`ops model recipes` lists them)",
            )
        elif spec.precision and spec.precision not in known[spec.recipe].precisions:
            add(
                ("models", name, "precision"),
                f"recipe {spec.recipe!r} has no precision {spec.precision!r}",
                f"choose one of: {', '.join(known[spec.recipe].precisions)}",
            )


def recipe_dir(recipe: str, precision: str | None, settings) -> Path:
    """The cache folder a model built from ``recipe`` lives in (it may not be built yet)."""
    from ops.models import recipes

    chosen = recipes.get(recipe)
    return recipes.output_dir(chosen, chosen.check_precision(precision), settings.cache)


def _model_folders(profile: Profile, profile_dir: Path, add) -> None:
    for name, spec in profile.models.items():
        if spec.path is None:
            continue
        loc: Loc = ("models", name, "path")
        if spec.path.startswith(BUNDLED_PREFIX) and not model_dir(spec.path, profile_dir).is_dir():
            bundled = paths.bundled_model_names()
            wanted = spec.path[len(BUNDLED_PREFIX) :]
            add(
                loc,
                f"no bundled model {wanted!r}{did_you_mean(wanted, bundled)}",
                f"bundled models: {', '.join(BUNDLED_PREFIX + b for b in bundled) or 'none'}",
            )
            continue
        folder = model_dir(spec.path, profile_dir)
        if not folder.exists():
            add(
                loc,
                f"model folder {folder} does not exist",
                "fix the path (relative paths start at the profile's folder)",
            )
        elif not folder.is_dir():
            add(
                loc,
                f"{folder} is a file, not a model folder",
                "point `path:` at the folder that holds genai_config.json",
            )
        elif not (folder / "genai_config.json").is_file():
            add(
                loc,
                f"model folder {folder} has no genai_config.json",
                "point it at an ONNX Runtime GenAI model folder (made by onnxruntime_genai.models.builder), "
                "e.g. bundled:tiny-fp32",
            )
