"""Read-only views of a stack: what runs (``ops status``) and which images its services use (``ops images``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ops import reconcile, services
from ops.errors import DockerError
from ops.host import process
from ops.profiles import LoadedProfile
from ops.services import spec as specs_mod
from ops.settings import Settings
from ops.state import StackState

Say = Callable[[str], None]


@dataclass(frozen=True)
class ContainerStatus:
    """One container of the stack as Docker sees it."""

    service: str
    name: str
    state: str
    health: str
    restarts: int
    ports: list[str]
    image: str


@dataclass(frozen=True)
class StackStatus:
    """The whole stack: model host, containers, volumes, and where the secrets are."""

    stack: str
    host: process.HostStatus
    containers: list[ContainerStatus]
    volumes: list[str]
    secrets_file: str
    docker: str


def status(stack: str, settings: Settings | None = None) -> StackStatus:
    """Ask the host and Docker about ``stack``; Docker being down is reported, not raised."""
    settings = settings or Settings.from_env()
    state = StackState.for_stack(stack, settings)
    host = process.status(state)
    found: list[ContainerStatus] = []
    vols: list[str] = []
    docker_note = "ok"
    try:
        from ops.docker_engine import connect

        client = connect(timeout=3)
    except DockerError as exc:
        client = None
        docker_note = exc.message
    if client is not None:
        for service, c in sorted(reconcile.containers(client, stack).items()):
            st = c.attrs.get("State", {})
            bindings = c.attrs.get("HostConfig", {}).get("PortBindings") or {}
            published = [
                f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{p}"
                for p, bs in bindings.items()
                for b in bs or []
            ]
            found.append(
                ContainerStatus(
                    service,
                    c.name,
                    st.get("Status", "?"),
                    (st.get("Health") or {}).get("Status", "-"),
                    c.attrs.get("RestartCount", 0),
                    published,
                    (c.attrs.get("Config") or {}).get("Image", ""),
                )
            )
        vols = sorted(reconcile.volumes(client, stack))
    return StackStatus(stack, host, found, vols, str(state.secrets.path), docker_note)


def known_stacks(settings: Settings | None = None) -> list[str]:
    """Stacks that have state on this machine."""
    settings = settings or Settings.from_env()
    root = settings.home / "stacks"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


@dataclass(frozen=True)
class ServiceImage:
    """What a service runs and where that image stands on this machine."""

    service: str
    policy: str
    image: str
    build_tag: str
    present: str  # the tag found locally, or ""
    origin: str
    size_bytes: int | None


def images(loaded: LoadedProfile) -> list[ServiceImage]:
    """For ``ops images``: each enabled service's image, its build tag and which of them is present."""
    from ops.docker_engine import connect
    from ops.images.policy import default_build_tag, describe_images

    client = connect()
    result = []
    for name, service in loaded.profile.services.items():
        if not service.enabled:
            continue
        kind = services.get(service.kind)
        recipe = specs_mod.recipe_dir(service, loaded.path.parent)
        image = service.image or kind.image or ""
        build_tag = default_build_tag(recipe) if recipe else ""
        infos = describe_images(client, [t for t in (image, build_tag) if t])
        found = next((i for i in infos if i.present), None)
        result.append(
            ServiceImage(
                name,
                service.image_policy,
                image or "(built only)",
                build_tag,
                found.tag if found else "",
                found.origin if found else "missing",
                found.size_bytes if found else None,
            )
        )
    return result


def build_images(loaded: LoadedProfile, only: str | None, say: Say) -> list[tuple[str, str, str]]:
    """Make every enabled service's image now (``ops images build``): build from recipes, else pull."""
    from ops import lifecycle
    from ops.docker_engine import connect
    from ops.errors import UsageError

    client = connect(timeout=60)
    names = [n for n, s in loaded.profile.services.items() if s.enabled]
    if only is not None:
        if only not in loaded.profile.services:
            raise UsageError(
                f"no service {only!r} in profile {loaded.name}", hint=f"services: {', '.join(names)}"
            )
        names = [only]
    done = []
    for name in names:
        recipe = specs_mod.recipe_dir(loaded.profile.services[name], loaded.path.parent)
        policy = "build" if recipe and recipe.is_dir() else "pull"
        done.append(lifecycle._image(client, loaded, name, say, policy=policy))
    return done
