"""The model host, in the foreground: bind, serve the gateway, load the models, stop when asked.

The gateway starts answering at once (``/health`` says ``loading`` with 503) so ``ops up`` can
show progress; a model answers requests only after it loaded and passed a warm-up generation.
It stops on SIGTERM or Ctrl-C (SIGINT), and on Windows on Ctrl+Break (SIGBREAK, see :mod:`ops.procs`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import threading
import time

import httpx
import psutil
import uvicorn

from ops import procs
from ops.errors import ModelError, ModelUnavailable, OpsError
from ops.gateway import ModelState, ModelTable, Route
from ops.gateway.app import GatewayConfig, create_app
from ops.gateway.protocol import GuardedProtocol, connection_budget
from ops.host import ports, tlsproxy
from ops.host.config import HostConfig, HostModel
from ops.host.info import HostInfo
from ops.host.keys import ParticipantKeys, ServiceKeys
from ops.metering.meter import GatewayMeter
from ops.models import (  # noqa: F401  (registers the foundry provider)
    batching,  # noqa: F401  (registers the batching provider)
    foundry,
    provider,
    remote,  # noqa: F401  (registers the openai provider)
)
from ops.models.recipes import request_defaults
from ops.settings import Settings
from ops.stack import GATEWAY_KEY
from ops.state import StackState

log = logging.getLogger("ops.host")


class Host:
    """Loads the configured models into providers and keeps the gateway's table up to date."""

    def __init__(self, config: HostConfig, state: StackState, settings: Settings):
        self.config = config
        self.state = state
        self.settings = settings
        self.table = ModelTable(aliases=dict(config.gateway.aliases))
        self.providers: dict[str, provider.Provider] = {}
        self.owner: dict[str, str] = {}

    def provider_for(self, name: str) -> provider.Provider:
        """The (one) provider instance called ``name``."""
        if name not in self.providers:
            self.providers[name] = provider.create(
                name,
                data_dir=self.settings.home / "foundry",
                logs_dir=self.state.root / "foundry-logs",
                catalog_url=self.settings.catalog_url,
                foundry=lambda: self.provider_for("foundry"),  # the batching provider fetches through it
            )
        return self.providers[name]

    def load_all(self, plans: tuple[HostModel, ...]) -> None:
        """Prepare and warm up every planned model; a failure marks that model failed, not the host."""
        for plan in plans:
            if plan.use:
                # Says where it runs from the start: a remote model that never loads is still listed remote.
                placeholder = Route(
                    plan.alias,
                    "",
                    "",
                    provider=plan.spec.provider,
                    task=plan.spec.task,
                    remote=plan.spec.leaves_machine,
                )
                self.table.put(placeholder, ModelState.LOADING)
        for plan in plans:
            if not plan.use:
                log.warning("model %s %s", plan.alias, plan.reason)
                continue
            spec = plan.spec
            started = time.monotonic()
            try:
                chosen = self.provider_for(spec.provider)
                route = chosen.prepare(plan.alias, spec, plan.folder, self._progress)
                self.owner[plan.alias] = spec.provider
                route = dataclasses.replace(route, defaults=request_defaults(spec))
                self.table.put(route, ModelState.LOADING)
                # Warm up what loads here; a remote model needs no warming, and it would cost tokens.
                if route.task == "chat" and not spec.url:
                    warm_up(route)
                self.table.set_state(plan.alias, ModelState.READY)
                log.info(
                    "model %s ready in %.2f s (%s)", plan.alias, time.monotonic() - started, route.model_id
                )
            except ModelUnavailable as exc:
                self.table.set_state(plan.alias, ModelState.UNAVAILABLE, exc.message)
                log.warning("model %s unavailable: %s", plan.alias, exc.message)
            except OpsError as exc:
                self.table.set_state(plan.alias, ModelState.FAILED, exc.message)
                log.error("model %s failed: %s", plan.alias, exc.message)

    def _progress(self, alias: str, fraction: float | None, message: str) -> None:
        detail = f"{message} {fraction:.0%}" if fraction is not None else message
        self.table.set_state(alias, ModelState.LOADING, detail)
        log.info("model %s: %s", alias, detail)

    async def control(self, alias: str, action: str) -> None:
        """Load or unload ``alias`` (the gateway's admin route)."""
        chosen = self.providers[self.owner[alias]] if alias in self.owner else None
        if chosen is None:
            raise ModelError(f"model {alias!r} is not prepared in this host")
        if action == "unload":
            await asyncio.to_thread(chosen.unload, alias)
            self.table.set_state(alias, ModelState.UNLOADED)
        else:
            self.table.set_state(alias, ModelState.LOADING, "loading")
            await asyncio.to_thread(chosen.load, alias)
            self.table.set_state(alias, ModelState.READY)

    def close(self) -> None:
        """Release every provider."""
        for chosen in self.providers.values():
            try:
                chosen.close()
            except Exception as exc:  # shutting down: report and go on with the others
                log.warning("closing provider %s: %s", chosen.name, exc)


def warm_up(route: Route, timeout: float = 300.0) -> None:
    """One short generation straight at the upstream, so the first real request is not the slow one."""
    headers = {"authorization": f"Bearer {route.api_key.reveal()}"} if route.api_key else {}
    body = {"model": route.model_id, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    try:
        response = httpx.post(
            f"{route.base_url}/chat/completions", json=body, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise ModelError(f"model {route.alias!r}: warm-up failed ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise ModelError(
            f"model {route.alias!r}: warm-up answered HTTP {response.status_code}: {response.text[:200]}"
        )


def open_meter(config: HostConfig, state: StackState) -> GatewayMeter:
    """Where the gateway reports each request: the stack's usage store (kept) and ``/metrics`` (live)."""
    virtual = tuple(config.gateway.routing.models)
    # The Prometheus `model` label takes these names only (any other, e.g. a 404's made-up name,
    # counts as "other"); the store keeps every name as sent. Participants come and go while the
    # host runs, so their label is bounded by the metrics themselves.
    return GatewayMeter(state, models=(*(m.alias for m in config.models), *virtual))


def serve(config: HostConfig, settings: Settings | None = None) -> None:
    """Run the host ``config`` describes in this process until SIGTERM/SIGINT (or SIGBREAK on Windows)."""
    settings = settings or Settings.from_env()
    state = StackState.for_stack(config.stack, settings).ensure()
    key = state.secrets.get_or_create(GATEWAY_KEY)
    gateway = config.gateway
    addresses = list(config.addresses)
    sockets = ports.bind(addresses, config.port)  # before anything else: a busy port starts nothing
    exposed = tlsproxy.run(config.expose)  # TLS on the LAN address (expose:), or None
    host = Host(config, state, settings)
    meter = open_meter(config, state)
    gateway_config = GatewayConfig(
        stack=config.stack,
        key=key,
        default_max_tokens=gateway.default_max_tokens,
        max_body_bytes=gateway.max_body_bytes,
        routing=gateway.routing if gateway.routing.models else None,
        private_patterns=gateway.routing.private_patterns,
        service_key=ServiceKeys(state.secrets),
        participants=ParticipantKeys(state.secrets),
        sharing=gateway.sharing,
        tokens_per_hour=config.tokens_per_hour,
        meter=meter,
    )
    app = create_app(host.table, gateway_config, control=host.control)
    # Deadlines for a request's head and body and a cap on open connections (ops.gateway.protocol):
    # without them a client with no key holds connections for ever. uvicorn's own limit_concurrency,
    # one above the cap, then only bounds requests still running for clients that left.
    max_connections = connection_budget(gateway.max_connections)
    protocol = GuardedProtocol.configured(gateway.head_timeout, gateway.body_timeout, max_connections)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=protocol,
            ws="none",  # no WebSocket routes; an upgrade would leave the protocol's accounting
            limit_concurrency=max_connections + 1,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    me = psutil.Process()
    info = HostInfo(
        os.getpid(),
        config.port,
        tuple(addresses),
        config.profile,
        time.time(),
        config.fingerprint(),
        create_time=me.create_time(),
        argv=tuple(me.cmdline()),
    )
    info.write(state.pid_file)
    log.info("gateway for stack %s on %s", config.stack, ", ".join(f"{a}:{config.port}" for a in addresses))
    loader = threading.Thread(target=host.load_all, args=(config.models,), name="model-loader", daemon=True)
    loader.start()
    # uvicorn shuts down gracefully on SIGTERM and SIGINT, and on SIGBREAK on Windows (where
    # ops.procs asks the host to stop with Ctrl+Break), then re-raises the signal it caught; with the
    # default action (the process ends) that would kill us before the models are unloaded and the
    # pid file removed.
    for signum in procs.STOP_SIGNALS:
        signal.signal(signum, lambda *_: None)
    try:
        server.run(sockets=sockets)
    finally:
        if exposed is not None:
            exposed.stop()
        host.close()
        meter.close()  # writes what it has queued
        for sock in sockets:
            sock.close()
        current = HostInfo.read(state.pid_file)
        if current and current.pid == os.getpid():
            state.pid_file.unlink(missing_ok=True)
        log.info("host stopped")
