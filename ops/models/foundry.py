"""The ``foundry`` provider: Foundry Local in-process through foundry-local-sdk.

Catalog models are found by alias and downloaded (with progress; the runtime resumes a
partial download); local ONNX Runtime GenAI folders are registered as bring-your-own models,
idempotently. Foundry's own web service is started on ``127.0.0.1`` on a free port; the
gateway is the only thing that talks to it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ops.errors import ModelError
from ops.gateway.table import Route
from ops.models import provider
from ops.models.provider import Progress
from ops.models.support import require_foundry

if TYPE_CHECKING:  # only an annotation here: the profile schema (pydantic) is not imported at run time
    from foundry_local_sdk import FoundryLocalManager
    from foundry_local_sdk.imodel import IModel

    from ops.profiles.schema import ModelSpec

log = logging.getLogger(__name__)

#: Local (BYOM) models are served only under this path by Foundry's web service.
LOCAL_PREFIX = "/catalogs/local/v1"
CATALOG_PREFIX = "/v1"


def local_model_id(alias: str, folder: Path) -> str:
    """A stable ``name:version`` id for a local folder: the same folder always gets the same id."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]
    return f"{alias}-{digest}:1"


def context_length(folder: Path) -> int | None:
    """The context length from a model folder's ``genai_config.json``."""
    try:
        config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("model", {}).get("context_length") or config.get("search", {}).get("max_length")


class FoundryProvider:
    """Foundry Local, in this process. The SDK's manager is a per-process singleton."""

    name = "foundry"

    def __init__(
        self,
        data_dir: Path,
        logs_dir: Path,
        web_url: str | None = "http://127.0.0.1:0",
        catalog_url: str | None = None,
        **_ignored,
    ):
        self.catalog_url = catalog_url
        self.data_dir = data_dir
        self.logs_dir = logs_dir
        self.web_url = web_url
        self.base_url: str | None = None
        self._models: dict[str, IModel] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Initialise the runtime (shared model cache under ``data_dir``) and start its web service.

        With ``web_url=None`` (the CLI's model commands) no web service is started.
        """
        if self.base_url or (self.web_url is None and self._instance() is not None):
            return
        require_foundry()  # one line saying why not where this platform has no Foundry Local (Intel macOS)
        from foundry_local_sdk import Configuration, FoundryLocalManager

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        try:
            if FoundryLocalManager.instance is None:
                FoundryLocalManager.initialize(
                    Configuration(
                        app_name="ops",
                        app_data_dir=str(self.data_dir / "app"),
                        model_cache_dir=str(self.data_dir / "models"),
                        logs_dir=str(self.logs_dir),
                        web=Configuration.WebService(urls=self.web_url) if self.web_url else None,
                        disable_nonessential_telemetry=True,
                        catalog_urls=[(self.catalog_url, None)] if self.catalog_url else None,
                    )
                )
            manager = FoundryLocalManager.instance
            if manager is None:  # initialize() sets it, or raises
                raise RuntimeError("the SDK made no manager")
            if self.web_url and not manager.urls:
                manager.start_web_service()
        except Exception as exc:  # the SDK raises its own exception types and RuntimeErrors
            raise ModelError(
                f"the Foundry Local runtime did not start: {_first_line(exc)}",
                hint=f"check that {self.data_dir} is writable; the runtime's logs are in {self.logs_dir}",
            ) from None
        if self.web_url:
            if not manager.urls:
                raise ModelError(
                    "the Foundry Local web service started without an address",
                    hint=f"the runtime's logs are in {self.logs_dir}",
                )
            self.base_url = manager.urls[0].rstrip("/")
            log.info("Foundry Local web service at %s", self.base_url)

    @property
    def manager(self) -> FoundryLocalManager:
        """The SDK's manager (after :meth:`start`)."""
        manager = self._instance()
        if manager is None:
            raise ModelError(
                "the Foundry Local runtime is not started", hint="this is a bug in ops: start() first"
            )
        return manager

    @staticmethod
    def _instance() -> FoundryLocalManager | None:
        """The SDK's manager, or None before :meth:`start` (and after :meth:`close`, or without the SDK)."""
        if sys.modules.get("foundry_local_sdk") is None:  # never loaded here: no manager (maybe no SDK)
            return None
        from foundry_local_sdk import FoundryLocalManager

        return FoundryLocalManager.instance

    def register_local(self, alias: str, folder: Path) -> IModel:
        """Register ``folder`` as a bring-your-own model unless already registered; return the model."""
        from foundry_local_sdk import CatalogType, ModelInfoBuilder

        catalog = self.manager.get_catalog(CatalogType.LOCAL)
        model_id = local_model_id(alias, folder)
        model = catalog.get_model_variant(model_id)
        if model is not None:
            return model
        with ModelInfoBuilder() as metadata:
            metadata.set_string_property("task", "chat-completion")
            metadata.set_string_property("displayName", alias)
            return catalog.register_model(
                model_path=str(folder.resolve()), model_id=model_id, metadata=metadata
            )

    def prepare(self, alias: str, spec: ModelSpec, folder: Path | None, progress: Progress) -> Route:
        """Register (local) or download (catalog), then load; return the route to Foundry's web service."""
        self.start()
        assert self.base_url is not None
        model: IModel | None
        try:
            if folder is not None:
                progress(alias, None, "registering")
                model = self.register_local(alias, folder)
                prefix, context = LOCAL_PREFIX, spec.context or context_length(folder)
            else:
                model = self._cached(alias, spec, progress)
                prefix, context = CATALOG_PREFIX, spec.context or model.context_length
            progress(alias, None, "loading")
            if not model.is_loaded:
                model.load()
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(
                f"model {alias!r} did not load: {_first_line(exc)}", hint="see the host log"
            ) from None
        with self._lock:
            self._models[alias] = model
        return Route(
            alias,
            model.id,
            self.base_url + prefix,
            provider=self.name,
            task=spec.task,
            context=context,
            tools=bool(model.supports_tool_calling),
        )

    def fetch(self, alias: str, spec: ModelSpec, progress: Progress) -> Path:
        """Download catalog model ``alias`` into Foundry's cache (without loading it); return its folder."""
        self.start()
        try:
            return Path(self._cached(alias, spec, progress).get_path())
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"model {alias!r} could not be downloaded: {_first_line(exc)}") from None

    def _cached(self, alias: str, spec: ModelSpec, progress: Progress) -> IModel:
        """Catalog model ``alias``, downloaded into Foundry's cache unless it is there already."""
        assert spec.catalog is not None
        model = self.manager.catalog.get_model(spec.catalog)
        if model is None:
            raise ModelError(
                f"model {alias!r}: {spec.catalog!r} is not in the Foundry catalog",
                hint="run `ops model list` to see the catalog's aliases",
            )
        if not model.is_cached:
            progress(alias, 0.0, "downloading")
            model.download(lambda pct: progress(alias, pct / 100.0, "downloading"))
        return model

    def load(self, alias: str) -> None:
        """Load ``alias`` again after an unload."""
        model = self._model(alias)
        if not model.is_loaded:
            model.load()

    def unload(self, alias: str) -> None:
        """Unload ``alias``; it stays registered and cached."""
        model = self._model(alias)
        if model.is_loaded:
            model.unload()

    def _model(self, alias: str) -> IModel:
        with self._lock:
            if alias not in self._models:
                raise ModelError(f"model {alias!r} was never prepared in this host", hint="check the profile")
            return self._models[alias]

    def close(self) -> None:
        """Unload the models, stop the web service and release the runtime."""
        manager = self._instance()
        if manager is None:
            return
        for alias in list(self._models):
            try:
                self.unload(alias)
            except Exception as exc:  # closing must go on; one bad model must not keep the rest loaded
                log.warning("unloading %s failed: %s", alias, _first_line(exc))
        try:
            if manager.urls:
                manager.stop_web_service()
        finally:
            manager.close()
            self.base_url = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


provider.register("foundry", FoundryProvider)
