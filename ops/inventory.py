"""Read-only views of a stack: what runs (``ops status``) and which images its services use (``ops images``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ops import reconcile
from ops.errors import DockerError
from ops.host import process
from ops.plan import StackPlan
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
            published = [
                f"{p.host_ip}:{p.host_port}->{p.container_port}/{p.protocol}"
                for p in reconcile.published_ports(c)
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


def images(plan: StackPlan) -> list[ServiceImage]:
    """For ``ops images``: each enabled service's image, its build tag and which of them is present."""
    from ops.docker_engine import connect
    from ops.images.policy import describe_images

    client = connect()
    result = []
    for name, service in plan.enabled.items():
        infos = describe_images(client, [t for t in (service.image, service.build_tag) if t])
        found = next((i for i in infos if i.present), None)
        result.append(
            ServiceImage(
                name,
                service.image_policy,
                service.image or "(built only)",
                service.build_tag,
                found.tag if found else "",
                found.origin if found else "missing",
                found.size_bytes if found else None,
            )
        )
    return result


def build_images(plan: StackPlan, only: str | None, say: Say) -> list[tuple[str, str, str]]:
    """Make every enabled service's image now (``ops images build``): build from recipes, else pull."""
    from ops.docker_engine import connect
    from ops.images.service import ensure_service_image

    chosen = [plan.service(only)] if only is not None else list(plan.enabled.values())
    client = connect(timeout=60)
    done = []
    for service in chosen:
        policy = "build" if service.recipe_dir and service.recipe_dir.is_dir() else "pull"
        done.append(ensure_service_image(client, service, say, policy=policy))
    return done
