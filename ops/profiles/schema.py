"""The profile schema: frozen, typed objects that reject unknown keys.

Profiles are parsed once, at the edge (see ``loader.py``); the rest of ``ops`` only
ever sees these objects. Field-level rules live here; rules that span fields (ports
used twice, dependency cycles, model folders) live in ``checks.py``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ops.profiles.classroom import ExposeSpec, ParticipantsSpec, PriceSpec, SharingSpec
from ops.profiles.mappings import Mount, Port
from ops.profiles.resources import Capabilities, ResourcesSpec

#: In ``gateway.bind``: the stack network's gateway address, so containers reach the host.
STACK_GATEWAY = "stack-gateway"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class Strict(BaseModel):
    """Base for every profile object: unknown keys are errors, objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


EnvValue = str | int | float | bool


#: How a model this machine runs is served when its profile does not say (``serve:``). Measured on
#: SmolLM2-135M int4, 2 cores, 64-token answers (``ops bench --model A,B``, README "Serving a room"):
#: the batching engine equals Foundry's web service at 1 stream and gives 1.25-1.3x its tokens/s from
#: 2 streams on, with time to first token at or below Foundry's.
DEFAULT_SERVE = "batching"


class BatchSpec(Strict):
    """The batching engine's limits for one model (``serve: batching``); unset: ``ops.batching.limits``'s."""

    max_batch: int | None = Field(default=None, ge=1, le=64, description="requests generating together")
    lanes: int | None = Field(
        default=None, ge=1, le=16, description="batches running at once, taking turns step by step"
    )
    queue: int | None = Field(
        default=None, ge=0, description="requests waiting for a place; one more gets 429 with Retry-After"
    )
    kv_cache_mb: float | None = Field(
        default=None, gt=0, description="key-value cache the running batches may hold together, in MB"
    )


class ModelSpec(Strict):
    """A model the stack serves: a Foundry catalog alias, a local ONNX Runtime GenAI folder, a model
    ``ops`` builds here from a recipe, or a model of another OpenAI-compatible server (a cloud
    endpoint, a Foundry service elsewhere)."""

    catalog: str | None = Field(default=None, description="Foundry Local catalog alias, e.g. phi-4-mini")
    path: str | None = Field(
        default=None, description="ONNX Runtime GenAI folder; `bundled:NAME` for a shipped model"
    )
    recipe: str | None = Field(
        default=None, description="a model recipe ops builds on this machine, e.g. smollm2-135m-instruct"
    )
    precision: Literal["int4", "int8", "fp16", "fp32"] | None = Field(
        default=None, description="the recipe's precision; default: the recipe's own default"
    )
    url: str | None = Field(
        default=None, description="base URL of an OpenAI-compatible API, e.g. https://host/v1"
    )
    model: str | None = Field(default=None, description="the model id at `url` (default: the alias)")
    api_key_env: str | None = Field(
        default=None, description="environment variable holding the key for `url`"
    )
    remote: bool | None = Field(
        default=None,
        description="requests to it leave the machine; default: true for every `url:` model (a loopback "
        "URL may be a tunnel), false for models this host serves (catalog, path, recipe); say `false` "
        "for a `url:` server that really runs on this machine",
    )
    task: Literal["chat", "embeddings"] = "chat"
    context: int | None = Field(
        default=None, gt=0, description="context length; read from genai_config.json if unset"
    )
    optional: bool = Field(
        default=False, description="when it cannot be had (catalog offline), skip it with a notice"
    )
    serve: Literal["batching", "foundry"] | None = Field(
        default=None,
        description="how this machine serves it: `batching` (ops' continuous-batching engine on "
        f"onnxruntime-genai) or `foundry` (Foundry Local's web service); default: {DEFAULT_SERVE}",
    )
    batch: BatchSpec | None = Field(
        default=None, description="the batching engine's limits (`serve: batching`)"
    )
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="temperature for requests that send none; default: the recipe's"
    )
    top_p: float | None = Field(
        default=None, gt=0, le=1, description="top_p for requests that send none; default: the recipe's"
    )
    price: PriceSpec | None = Field(default=None, description="what its tokens cost (`ops usage` adds it up)")

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data: object) -> object:
        if isinstance(data, dict) and "device" in data:
            raise ValueError(
                "`device:` was removed: it never had an effect. Foundry Local picks the variant for this "
                "machine, and `ops smoke --device cpu|cuda` tries a device in-process; delete the line"
            )
        return data

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if sum(x is not None for x in (self.catalog, self.path, self.recipe, self.url)) != 1:
            raise ValueError(
                "give exactly one of `catalog:` (a Foundry alias), `path:` (a local model folder), "
                "`recipe:` (a model ops builds, e.g. smollm2-135m-instruct) or `url:` (an OpenAI-compatible server)"
            )
        if self.precision is not None and self.recipe is None:
            raise ValueError("`precision:` goes with `recipe:` only")
        if self.url is None and (self.model or self.api_key_env):
            raise ValueError("`model:` and `api_key_env:` go with `url:` only")
        if self.url is not None and (self.serve or self.batch):
            raise ValueError("`serve:` and `batch:` are for models this machine runs, not `url:` ones")
        if self.batch is not None and self.serve == "foundry":
            raise ValueError("`batch:` sets the batching engine's limits: it goes with `serve: batching`")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f'`url:` must start with http:// or https://, got "{self.url}"')
        return self

    @property
    def source(self) -> str:
        """``catalog``, ``local``, ``recipe`` or ``remote``."""
        if self.catalog:
            return "catalog"
        return "local" if self.path else "recipe" if self.recipe else "remote"

    @property
    def leaves_machine(self) -> bool:
        """True when requests to this model leave the machine (private requests never go there).

        A model is local only when this host serves it (catalog, path, recipe) or the profile says so
        (``remote: false``): a loopback ``url:`` proves nothing, it may be a tunnel to anywhere.
        """
        if self.remote is not None:
            return self.remote
        return self.url is not None

    @property
    def provider(self) -> str:
        """The provider that serves it: ``openai`` for ``url``, else its ``serve:`` (``batching`` or ``foundry``)."""
        return "openai" if self.url else self.serve or DEFAULT_SERVE


#: Default task classifier: a task name and the regexes that mark a request as that task.
DEFAULT_TASKS: dict[str, tuple[str, ...]] = {
    "code": (
        r"```",
        r"\b(def|class|import|function|return|const|let|var|fn|struct|SELECT|INSERT)\b",
        r"\b(code|python|javascript|typescript|rust|java|sql|regex|bash|compile|stack trace|bug|refactor)\b",
    ),
}
#: Default personal-data patterns: a request that matches one never leaves the machine. They read
#: the request normalised (NFKC, invisible format characters removed: see ``ops.gateway.routing``), so
#: ``＠``, full-width digits and zero-width spaces inside a number need no pattern of their own. Numbers
#: are matched by their shape (groups and separators), so years, dates and prices are not personal data.
DEFAULT_PRIVATE_PATTERNS: tuple[str, ...] = (
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail address
    r"\+\d(?:[ ./()-]{0,2}\d){7,14}(?!\d)",  # international phone number: +49 170 1234567
    # North American phone number: 555.123.4567, (555) 123-4567, 555-123-4567, 5551234567
    r"(?<![\w.,/-])\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}(?![\w/-]|[.,]\d)",
    # national phone number with a trunk 0: 0170 1234567, 030 12345678, 020 7946 0958
    r"(?<![\w.,/+-])\(?0\d{2,4}\)?[ /.-]?\d{3,4}[ .-]?\d{3,5}(?![\w/-]|[.,]\d)",
    r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}\b",  # IBAN
    # payment card number (Visa, Mastercard, Discover, Amex), in groups or not
    r"(?<![\w.,-])(?:4\d{3}|5[1-5]\d{2}|6\d{3}|222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)"
    r"(?:[ .-]?\d{4}){3}(?![\w-]|[.,]\d)",
    r"(?<![\w.,-])3[47]\d{2}[ .-]?\d{6}[ .-]?\d{5}(?![\w-]|[.,]\d)",
    # US social security number, with dashes, spaces, dots or none: 123-45-6789, 123456789
    r"(?<![\w.,$€£-])(?!000|666|9\d\d)\d{3}([ .-]?)(?!00)\d{2}\1(?!0000)\d{4}(?![\w-]|[.,]\d)",
)


class RuleWhen(Strict):
    """Conditions of a routing rule; all given ones must hold."""

    task: str | None = Field(default=None, description="a task the classifier names, e.g. code or chat")
    min_tokens: int | None = Field(
        default=None, gt=0, description="estimated input tokens at least this many"
    )
    private: bool | None = Field(
        default=None, description="the request is private (marked, or personal data found)"
    )


class RouteRule(Strict):
    """When ``when`` holds, try the models in ``to`` in order."""

    when: RuleWhen
    to: tuple[str, ...] = Field(min_length=1)


class VirtualModel(Strict):
    """A model name clients can pick (e.g. ``auto``) that the gateway routes by rules, with fallback."""

    rules: tuple[RouteRule, ...] = ()
    default: tuple[str, ...] = Field(min_length=1, description="models to try when no rule matches")
    timeout: float = Field(
        default=30.0, gt=0, description="seconds to wait for a model's first byte before the next"
    )


class RoutingSpec(Strict):
    """Hybrid routing: virtual models, the task classifier and what counts as private."""

    models: dict[str, VirtualModel] = Field(default_factory=dict)
    tasks: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(DEFAULT_TASKS))
    private_patterns: tuple[str, ...] = DEFAULT_PRIVATE_PATTERNS

    @field_validator("tasks")
    @classmethod
    def _task_regexes(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for task, patterns in value.items():
            for pattern in patterns:
                _compiles(pattern, f"tasks.{task}")
        return value

    @field_validator("private_patterns")
    @classmethod
    def _private_regexes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            _compiles(pattern, "private_patterns")
        return value


def _compiles(pattern: str, where: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}: {pattern!r} is not a valid regular expression ({exc})") from None


class GatewaySpec(Strict):
    """The OpenAI-compatible front door on the host."""

    port: int = Field(default=8000, ge=1, le=65535)
    bind: tuple[str, ...] = ("127.0.0.1", STACK_GATEWAY)
    default_max_tokens: int = Field(default=300, gt=0)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_connections: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="open client connections at most; one more is answered 503 and closed",
    )
    head_timeout: float = Field(
        default=10, gt=0, le=600, description="seconds a client has to send a request line and headers"
    )
    body_timeout: float = Field(
        default=30, gt=0, le=3600, description="seconds a client has to send a request body after its head"
    )
    aliases: dict[str, str] = Field(default_factory=dict)
    routing: RoutingSpec = RoutingSpec()
    sharing: SharingSpec = SharingSpec()

    @field_validator("bind")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f'list at least one address, e.g. ["127.0.0.1", "{STACK_GATEWAY}"]')
        for address in value:
            if address == STACK_GATEWAY:
                continue
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f'"{address}" is not an IP address or "{STACK_GATEWAY}"') from None
        return value


class HealthSpec(Strict):
    """How to tell a service is ready: an HTTP path (status, body) or a TCP connect."""

    http: str | None = Field(default=None, description="path probed over HTTP, e.g. /health")
    tcp: bool = False
    port: int | None = Field(
        default=None, ge=1, le=65535, description="container port; default: the first published"
    )
    status: int = Field(default=200, ge=100, le=599)
    body: str | None = Field(default=None, description="text the response body must contain")
    timeout: float = Field(default=300, gt=0, description="seconds before `ops up` gives up")
    interval: float = Field(
        default=0.1, gt=0, le=60, description="seconds between two probes while `ops up` waits"
    )

    @field_validator("http")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f'expected a path starting with "/", got "{value}"')
        return value


class BuildSpec(Strict):
    """How to build the image when it cannot (or should not) be pulled."""

    context: str | None = Field(default=None, description="folder with the Dockerfile; default stacks/<kind>")
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = Field(default_factory=dict)
    ca_bundle: str | None = Field(default=None, description="extra CA bundle for networks that intercept TLS")


class ServiceSpec(Strict):
    """One container of the stack."""

    kind: str
    image: str | None = None
    build: BuildSpec | None = None
    image_policy: Literal["pull", "build", "pull-or-build"] = "pull-or-build"
    ports: tuple[Port, ...] | None = None
    volumes: tuple[Mount, ...] = ()
    environment: dict[str, EnvValue] = Field(default_factory=dict)
    health: HealthSpec | None = None
    depends_on: tuple[str, ...] = ()
    enabled: bool = True
    resources: ResourcesSpec = ResourcesSpec()
    cap_add: Capabilities = Field(
        default=(), description="Linux capabilities given back (all are dropped), e.g. [NET_BIND_SERVICE]"
    )
    version: str | None = Field(
        default=None,
        description="the version it runs: its kind's version build argument, or its image's tag",
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
    )


class VolumeSpec(Strict):
    """A named Docker volume the stack owns."""

    labels: dict[str, str] = Field(default_factory=dict)


class Profile(Strict):
    """A whole stack: models on the host, the gateway, services and their volumes."""

    name: str | None = Field(default=None, description="stack name; default: the file name without .yaml")
    description: str = ""
    models: dict[str, ModelSpec]
    gateway: GatewaySpec = GatewaySpec()
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    volumes: dict[str, VolumeSpec | None] = Field(default_factory=dict)
    participants: ParticipantsSpec | None = None
    expose: ExposeSpec | None = None

    @field_validator("name")
    @classmethod
    def _stack_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(
                f'"{value}" is not a valid stack name (lower-case letters, digits, "-", "_", ".")'
            )
        return value

    @field_validator("models")
    @classmethod
    def _some_models(cls, value: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        if not value:
            raise ValueError("list at least one model")
        return value

    @field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, ServiceSpec]) -> dict[str, ServiceSpec]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(
                    f'"{name}" is not a valid service name (lower-case letters, digits, "-", "_", ".")'
                )
        return value
