"""Service kinds: the defaults and wiring for one kind of container, registered by name.

A kind knows its default image, the recipe folder under ``stacks/`` that builds it where
no registry answers, its container port, data path and health path. A profile may override
every default. Built-ins register the same way a plug-in would, through :func:`register`.

No module outside this package names a kind: the rest of ops asks a kind for its hooks
(``environment``, ``chain``, ``accounts``, ``browser_check``, ``benign_log``, ``extra_build_files``) and its
``features`` (see :data:`FEATURES`), and finds kinds with :func:`with_feature` and :func:`by_recipe`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ops.errors import UsageError

if TYPE_CHECKING:
    from ops.profiles.mappings import PortMapping
    from ops.secrets import Secret, SecretStore


@dataclass(frozen=True)
class StackContext:
    """What a kind needs to wire its container to the stack."""

    stack: str
    #: The gateway's OpenAI base URL as containers reach it (from the stack plan).
    gateway_url: str
    gateway_key: Secret
    secrets: SecretStore
    models: tuple[str, ...]
    #: The same gateway as this machine reaches it (for checks that ``ops`` itself runs).
    local_gateway_url: str = ""
    #: The service being wired ("" for the stack as a whole, whose ``gateway_key`` is the stack key).
    service: str = ""
    #: Where the room reaches each exposed service (name -> https URL on the LAN address); empty
    #: without ``expose:`` (from the stack plan's :class:`~ops.exposure.ExposePlan`).
    public_urls: tuple[tuple[str, str], ...] = ()

    @property
    def public_url(self) -> str:
        """The https URL the room reaches this context's service at ("" when it is not exposed)."""
        return dict(self.public_urls).get(self.service, "")

    def for_service(self, name: str) -> StackContext:
        """This context for service ``name``: its own inference-only gateway key (made once, then kept)."""
        from dataclasses import replace

        from ops.stack import service_key

        return replace(self, service=name, gateway_key=self.secrets.get_or_create(service_key(name)))


@dataclass(frozen=True)
class ChainReport:
    """What a kind's end-to-end check found: the models it sees and one answer through it."""

    models: tuple[str, ...]
    answer: str
    detail: str = ""


@dataclass(frozen=True)
class Account:
    """One person's sign-in that ``ops`` makes in a service (a workshop participant)."""

    name: str
    email: str
    password: Secret


class Accounts(Protocol):
    """A kind's hook for people's own accounts, which ``ops participants`` makes, resets and deletes.

    Every call takes the service's wiring context (``StackContext.for_service``) and its base URL on
    this machine, signs in as the service's admin itself, and raises ``OpsError`` (with a hint) when
    the service does not answer or refuses.
    """

    #: The path of the service's sign-in page (the participants' sheet prints its URL as a QR code).
    sign_in_path: str

    def answers(self, base_url: str, timeout: float = 5) -> bool:
        """True when the service answers at ``base_url`` (nothing is changed)."""
        ...

    def existing(self, ctx: StackContext, base_url: str) -> dict[str, str]:
        """Every account of the service: e-mail -> the service's id for it."""
        ...

    def create(self, ctx: StackContext, base_url: str, accounts: Sequence[Account]) -> None:
        """Make ``accounts`` (ordinary users, not admins), which do not exist yet."""
        ...

    def set_password(self, ctx: StackContext, base_url: str, account_id: str, password: Secret) -> None:
        """Give the account ``account_id`` a new password."""
        ...

    def delete(self, ctx: StackContext, base_url: str, account_id: str) -> None:
        """Delete the account ``account_id`` and what it made in the service."""
        ...


#: Features a kind may declare; checks and tools that apply to every kind with a feature ask for it.
#: The service keeps an OpenAI connection to the gateway in its own settings (``/openai/config``).
OPENAI_CONNECTION = "openai-connection"
#: People sign in to the service with the generated admin's credentials (kept in the stack's secrets).
SIGN_IN = "sign-in"
#: The service answers questions from documents put in its data volume (``ops rag``, the RAG eval).
RAG = "rag"
#: ``GET /health`` answers ``{"status": "ok"}``.
JSON_HEALTH = "json-health"
#: A page that runs a model in the browser: its files must be served with the right types and headers.
BROWSER_DEMO = "browser-demo"
#: Participants sign in with their name and password, which the service checks with the gateway.
PARTICIPANT_SIGN_IN = "participant-sign-in"
FEATURES = frozenset({OPENAI_CONNECTION, SIGN_IN, RAG, JSON_HEALTH, BROWSER_DEMO, PARTICIPANT_SIGN_IN})


@dataclass(frozen=True)
class ServiceKind:
    """Defaults of one kind of service."""

    name: str
    description: str
    image: str | None = None
    recipe: str | None = None
    port: int | None = None
    host_port: int | None = None
    data_path: str | None = None
    health_path: str | None = None
    #: Environment wiring the container to the stack (gateway URL, key, generated secrets).
    environment: Callable[[StackContext], dict[str, str | Secret]] | None = field(default=None, compare=False)
    #: End-to-end check through the service's own API, given its base URL on the host.
    chain: Callable[[StackContext, str, float], ChainReport] | None = field(default=None, compare=False)
    #: People's own accounts (participants), made through the service's API; ``None``: the kind has none.
    accounts: Accounts | None = field(default=None, compare=False)
    #: The admin's sign-in to the service (label -> value, e.g. ``{"e-mail": ..., "password": Secret}``),
    #: for ``ops credentials``; ``None``: the kind has no sign-in.
    credentials: Callable[[StackContext], dict[str, str | Secret]] | None = field(default=None, compare=False)
    #: What the kind offers beyond the basics, from :data:`FEATURES`.
    features: frozenset[str] = frozenset()
    #: Error-looking log lines the kind prints in normal operation (``ops doctor`` does not count them).
    benign_log: re.Pattern[str] | None = field(default=None, compare=False)
    #: Host files its recipe needs in the build context (context path -> file); keywords ``arch``
    #: and ``env`` (the environment pip is read from). Raises ``DockerError`` when one is missing.
    extra_build_files: Callable[..., dict[str, Path]] | None = field(default=None, compare=False)
    #: ``ops smoke``'s check in a real browser, given the service's base URL: (one line saying what
    #: it saw, metrics). Raises ``ImportError`` without Playwright, ``OpsError`` when it fails.
    browser_check: Callable[[str], tuple[str, dict[str, str]]] | None = field(default=None, compare=False)
    #: The build argument of its recipe that carries the version it runs (``ops upgrade``); its default
    #: is the Dockerfile's ``ARG``. ``None``: a built image of this kind has no version.
    version_arg: str | None = None
    #: The tag of the kind's default image for a version (``"v{}"``: version 0.12.4 is tag v0.12.4).
    version_tag: str = "{}"

    def __post_init__(self) -> None:
        unknown = set(self.features) - FEATURES
        if unknown:
            raise ValueError(f"kind {self.name}: unknown feature(s) {', '.join(sorted(unknown))}")

    @property
    def default_ports(self) -> tuple[PortMapping, ...]:
        """What a service of this kind publishes when the profile names no ports: its port on 127.0.0.1."""
        from ops.profiles.mappings import PortMapping

        if self.port and self.host_port:
            return (PortMapping("127.0.0.1", self.host_port, self.port),)
        return ()

    @property
    def needs_image(self) -> bool:
        """A kind without a default image or recipe needs the profile to name an image."""
        return self.image is None and self.recipe is None


_KINDS: dict[str, ServiceKind] = {}


def register(kind: ServiceKind) -> ServiceKind:
    """Register ``kind`` under its name (a later registration replaces an earlier one)."""
    _KINDS[kind.name] = kind
    return kind


def names() -> list[str]:
    """Names of the registered kinds."""
    return sorted(_KINDS)


def with_feature(feature: str) -> list[str]:
    """Names of the registered kinds that have ``feature``."""
    return [name for name in names() if feature in _KINDS[name].features]


def has_feature(kind: str, feature: str) -> bool:
    """True when the kind called ``kind`` is registered and has ``feature``."""
    found = _KINDS.get(kind)
    return found is not None and feature in found.features


def by_recipe(recipe: str) -> ServiceKind | None:
    """The kind whose default recipe folder is called ``recipe``, or None."""
    return next((k for k in _KINDS.values() if k.recipe == recipe), None)


def get(name: str) -> ServiceKind:
    """The kind called ``name``; an unknown name lists the valid ones."""
    try:
        return _KINDS[name]
    except KeyError:
        raise UsageError(
            f"unknown service kind {name!r}", hint=f"valid kinds: {', '.join(names())}"
        ) from None


# The built-in kinds register themselves the way a plug-in would.
from ops.services import kinds  # noqa: E402, F401
