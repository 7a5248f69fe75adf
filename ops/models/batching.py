"""The ``batching`` provider: local models served by ops' continuous-batching engine (``ops.batching``).

The models are the same as Foundry's: a local or recipe folder is served as it is; a catalog model
is found, downloaded and cached by Foundry Local first (:meth:`FoundryProvider.fetch`), then its
folder is served here. One :class:`~ops.batching.server.EngineServer` per host, on a free loopback
port, serves every such model; the gateway routes to it as it routes to Foundry's web service, so
clients see the same API (``owned_by`` and ``/health``'s ``serving`` say which path answers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ops.errors import ModelError
from ops.gateway.table import Route
from ops.models import provider
from ops.models.provider import Progress
from ops.models.support import require_genai

if TYPE_CHECKING:
    from ops.batching.limits import Limits
    from ops.batching.model import EngineModel
    from ops.batching.server import EngineServer
    from ops.models.foundry import FoundryProvider
    from ops.profiles.schema import BatchSpec, ModelSpec


def limits_of(batch: BatchSpec | None) -> Limits:
    """The engine's limits: the profile's ``batch:`` over :class:`~ops.batching.limits.Limits`'s defaults."""
    from ops.batching.limits import Limits

    limits = Limits()
    if batch is None:
        return limits
    return Limits(
        max_batch=batch.max_batch if batch.max_batch is not None else limits.max_batch,
        lanes=batch.lanes if batch.lanes is not None else limits.lanes,
        max_queue=batch.queue if batch.queue is not None else limits.max_queue,
        kv_cache_mb=batch.kv_cache_mb if batch.kv_cache_mb is not None else limits.kv_cache_mb,
        gather_s=limits.gather_s,
    )


class BatchingProvider:
    """Local models on onnxruntime-genai's batching engine, in this process."""

    name = "batching"

    def __init__(self, foundry: Callable[[], FoundryProvider] | None = None, **_ignored):
        #: The host's Foundry provider (one per process: its runtime is a singleton), for catalog models.
        self.foundry = foundry
        self.server: EngineServer | None = None
        self._models: dict[str, tuple[Path, Limits]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the engine server (once)."""
        with self._lock:
            if self.server is None:
                from ops.batching.server import EngineServer

                require_genai()
                self.server = EngineServer({}).start()

    def prepare(self, alias: str, spec: ModelSpec, folder: Path | None, progress: Progress) -> Route:
        """Fetch a catalog model through Foundry (a folder is used as it is), load it into an engine; route to it."""
        if spec.task != "chat":
            raise ModelError(
                f"model {alias!r}: the batching engine serves chat models only",
                hint="add `serve: foundry` to this model in the profile",
            )
        if folder is None:
            folder = self._fetch(alias, spec, progress)
        limits = limits_of(spec.batch)
        self.start()
        progress(alias, None, "loading")
        model = self._engine_model(alias, folder, limits)
        with self._lock:
            self._models[alias] = (folder, limits)
        assert self.server is not None
        self.server.add(model)
        return Route(
            alias,
            alias,
            self.server.base_url,
            provider=self.name,
            task=spec.task,
            context=spec.context or model.context,
            tools=False,  # the engine path has no tool calling
            slots=limits.lanes * limits.max_batch,  # what it generates at once; the gateway shares that
        )

    def _fetch(self, alias: str, spec: ModelSpec, progress: Progress) -> Path:
        if self.foundry is None:
            raise ModelError(f"model {alias!r}: no Foundry Local here to download it from the catalog")
        return self.foundry().fetch(alias, spec, progress)

    def _engine_model(self, alias: str, folder: Path, limits: Limits) -> EngineModel:
        from ops.batching.model import EngineModel

        try:
            return EngineModel(folder, alias, limits, og=require_genai())
        except (OSError, ValueError, RuntimeError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"model {alias!r} did not load in the batching engine: {text}") from None

    def load(self, alias: str) -> None:
        """Load ``alias`` again after an unload."""
        with self._lock:
            if alias not in self._models:
                raise ModelError(f"model {alias!r} was never prepared in this host", hint="check the profile")
            folder, limits = self._models[alias]
        assert self.server is not None
        if alias not in self.server.models:
            self.server.add(self._engine_model(alias, folder, limits))

    def unload(self, alias: str) -> None:
        """Stop ``alias``'s engine and free its memory; :meth:`load` brings it back."""
        if self.server is not None:
            self.server.remove(alias)

    def close(self) -> None:
        """Stop serving and every engine."""
        with self._lock:
            server, self.server = self.server, None
        if server is not None:
            server.close()


provider.register("batching", BatchingProvider)
