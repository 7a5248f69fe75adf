"""The gateway's model table: which name goes where, and whether it is ready."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum

from ops.secrets import Secret


class ModelState(StrEnum):
    """Where a model is in its life in the host."""

    LOADING = "loading"
    READY = "ready"
    UNLOADED = "unloaded"
    UNAVAILABLE = "unavailable"  # e.g. a cloud model whose key is not set: routes skip it
    FAILED = "failed"


@dataclass(frozen=True)
class Route:
    """Where requests for one model go: an OpenAI-compatible base URL and the upstream's model id."""

    alias: str
    model_id: str
    base_url: str  # e.g. http://127.0.0.1:41234/catalogs/local/v1 (no trailing slash)
    provider: str = "foundry"
    task: str = "chat"
    context: int | None = None
    api_key: Secret | None = None
    #: False when the model cannot call tools: tool schemas sent to it only eat its context.
    tools: bool = True
    #: True when requests to it leave the machine: private requests are never sent there.
    remote: bool = False
    #: Sampling settings a request gets when it sends none (e.g. ``temperature``): the profile's or
    #: the recipe's, since Foundry otherwise samples at temperature 1, which small models turn to noise.
    defaults: tuple[tuple[str, float], ...] = ()
    #: Requests its server runs at once (the batching engine: lanes x max_batch); None: unknown, the
    #: gateway's sharing then assumes ``ops.gateway.sharing.DEFAULT_SLOTS``.
    slots: int | None = None


@dataclass
class ModelTable:
    """Routes by alias plus their states; safe to update from the host's loader thread."""

    routes: dict[str, Route] = field(default_factory=dict)
    states: dict[str, ModelState] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)  # progress or failure reason
    aliases: dict[str, str] = field(default_factory=dict)  # extra name -> alias
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def put(self, route: Route, state: ModelState = ModelState.LOADING) -> None:
        """Add or replace the route of ``route.alias`` with ``state``."""
        with self._lock:
            self.routes[route.alias] = route
            self.states[route.alias] = state
            self.details.pop(route.alias, None)

    def set_state(self, alias: str, state: ModelState, error: str | None = None) -> None:
        """Record a model's new state (and the reason when it failed)."""
        with self._lock:
            self.states[alias] = state
            if error:
                self.details[alias] = error
            else:
                self.details.pop(alias, None)

    def resolve(self, name: str) -> Route | None:
        """The route for a client's model name: an alias, an extra alias, or the full upstream id."""
        name = self.aliases.get(name, name)
        if name in self.routes:
            return self.routes[name]
        for route in self.routes.values():
            if route.model_id == name:
                return route
        return None

    def state(self, alias: str) -> ModelState:
        """The state of ``alias`` (unloaded if unknown)."""
        return self.states.get(alias, ModelState.UNLOADED)

    def names(self) -> list[str]:
        """Every alias, in profile order."""
        return list(self.routes)

    @property
    def ready(self) -> bool:
        """True when every model that is not deliberately unloaded is ready."""
        return all(
            self.states.get(a) in (ModelState.READY, ModelState.UNLOADED, ModelState.UNAVAILABLE)
            for a in self.routes
        ) and any(s == ModelState.READY for s in self.states.values())
