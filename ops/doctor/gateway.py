"""The ``gateway`` group: the model host is alive, ``/health`` answers, the key works, the models are listed."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import httpx

from ops.doctor import BaseCheck, Outcome, Repair, fail, ok, profile_of, register, warn
from ops.doctor.context import DoctorContext
from ops.errors import OpsError
from ops.stack import GATEWAY_KEY

HTTP_TIMEOUT = 5.0


def _last_error(ctx: DoctorContext) -> str:
    from ops.host import process

    lines = [line for line in process.last_log_lines(ctx.state(), 20) if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "Traceback" in line]
    return (errors or lines or [""])[-1].strip()


def restart_host(ctx: DoctorContext) -> str:
    """(Re)start the stack's host on the profile's addresses (the stack network's gateway too)."""
    from ops.host import process
    from ops.network import bind_addresses
    from ops.plan import resolve

    loaded = ctx.loaded
    if loaded is None:  # offered only by checks that had the profile
        raise OpsError("the profile did not load, so the host cannot be restarted")
    plan = resolve(loaded, ctx.settings)  # the host's models depend on whether the catalog answers now
    process.stop(ctx.state())
    addresses, notice = bind_addresses(plan.gateway.bind, plan.name, ctx.docker_or_none())
    info, _ = process.start(plan, ctx.state(), addresses, timeout=240)
    return f"model host restarted (pid {info.pid}) at {plan.gateway.url}" + (f"; {notice}" if notice else "")


@register
class HostCheck(BaseCheck):
    """The stack's model host process is alive, on the profile's port."""

    name = "gateway.host"
    group = "gateway"
    depends_on = ("host.profile",)

    def run(self, ctx: DoctorContext) -> Outcome:
        host = ctx.host()
        profile = ctx.profile_arg
        log = ctx.state().log_file
        if host.running and host.info:
            info = host.info
            wanted = profile_of(ctx).profile.gateway.port
            up = time.time() - info.started
            detail = f"pid {info.pid}, up {up / 60:.0f} min, gateway on {', '.join(info.addresses)} port {info.port}"
            if info.port != wanted:
                return warn(
                    f"{detail}, but the profile now says port {wanted}",
                    f"`ops down {profile}` then `ops up {profile}` moves it to port {wanted}",
                )
            return ok(detail)
        if host.stale and host.info:
            import psutil

            last = _last_error(ctx)
            gone = (
                "now belongs to another process (stale pid file)"
                if psutil.pid_exists(host.info.pid)
                else "is gone"
            )
            return fail(
                f"the model host died: pid {host.info.pid} {gone}"
                + (f"; its log ends: {last}" if last else ""),
                f"`ops doctor {profile} --fix` restarts it (or `ops up {profile}`); its log is {log}",
                Repair("restart the model host", lambda: restart_host(ctx)),
            )
        return fail(f"the model host of stack {ctx.stack} is not running", f"`ops up {profile}` starts it")


@register
class HealthCheck(BaseCheck):
    """``GET /health`` answers for this stack, with every model ready."""

    name = "gateway.health"
    group = "gateway"
    depends_on = ("gateway.host",)

    def run(self, ctx: DoctorContext) -> Outcome:
        url = f"{ctx.host().info.url}/health"
        restart = f"`ops restart {ctx.profile_arg} host`; its log is {ctx.state().log_file}"
        try:
            response = httpx.get(url, timeout=HTTP_TIMEOUT)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return fail(f"GET {url}: {type(exc).__name__}: {str(exc)[:120] or 'no answer'}", restart)
        if body.get("stack") != ctx.stack:
            return fail(
                f"GET {url} is answered by stack {body.get('stack')!r}, not {ctx.stack!r}",
                f"two stacks share port {ctx.host().info.port}: change `gateway.port` in one profile",
            )
        models = ", ".join(f"{a} {s}" for a, s in body.get("models", {}).items()) or "no models"
        if response.status_code == 503:
            return warn(
                f"GET {url}: loading ({models})", "wait for the models to load; models.loaded says which"
            )
        if response.status_code != 200:
            return fail(f"GET {url}: HTTP {response.status_code}", restart)
        return ok(f"GET {url}: {body.get('status')} ({models})")


@register
class KeyCheck(BaseCheck):
    """A gateway key is stored, the gateway accepts it, and refuses requests without it."""

    name = "gateway.key"
    group = "gateway"
    depends_on = ("gateway.health",)

    def run(self, ctx: DoctorContext) -> Outcome:
        where = ctx.state().secrets.path
        key = ctx.secret(GATEWAY_KEY)
        profile = ctx.profile_arg
        if key is None or not key.reveal().strip():
            return fail(
                f"no gateway key is stored in {where} (blank API key)",
                f"`ops up {profile}` creates one; then `ops restart {profile} host` so the host uses it",
            )
        url = f"{ctx.host().info.url}/v1/models"
        keyed = httpx.get(url, headers={"authorization": f"Bearer {key.reveal()}"}, timeout=HTTP_TIMEOUT)
        if keyed.status_code == 401:
            return fail(
                f"the gateway rejects the key stored in {where} (the host was started with another one)",
                f"`ops restart {profile} host` restarts it with the stored key",
            )
        if keyed.status_code != 200:
            return fail(f"GET {url} with the key: HTTP {keyed.status_code}", f"`ops restart {profile} host`")
        bare = httpx.get(url, timeout=HTTP_TIMEOUT)
        if bare.status_code != 401:
            return fail(
                f"GET {url} without a key answers HTTP {bare.status_code}: anyone who reaches the port can use it",
                f"`ops restart {profile} host` (the gateway must be ops's own)",
            )
        return ok(f"the key stored in {where} is accepted; requests without it get 401")


@register
class ModelsCheck(BaseCheck):
    """``/v1/models`` lists the profile's models, and Foundry's web service behind them answers."""

    name = "gateway.models"
    group = "gateway"
    depends_on = ("gateway.key",)

    def run(self, ctx: DoctorContext) -> Outcome:
        host = ctx.host()
        key = ctx.secret(GATEWAY_KEY).reveal()
        url = f"{host.info.url}/v1/models"
        cards = httpx.get(url, headers={"authorization": f"Bearer {key}"}, timeout=HTTP_TIMEOUT).json()[
            "data"
        ]
        listed = {card["id"]: card for card in cards}
        served = set((host.health or {}).get("models", {}))
        loaded = profile_of(ctx)
        wanted = [a for a in loaded.profile.models if a in served or a in loaded.model_dirs]
        restart = f"`ops restart {ctx.profile_arg} host`; its log is {ctx.state().log_file}"
        missing = [a for a in wanted if a not in listed]
        if missing:
            return fail(
                f"{url} does not list {', '.join(missing)} (it lists: {', '.join(listed) or 'none'})", restart
            )
        ready = (_upstream(card) for card in listed.values() if card.get("ready"))
        upstreams = sorted({u for u in ready if u})
        silent = [u for u in upstreams if not _answers(u)]
        if silent:
            return fail(
                f"Foundry's web service behind the gateway does not answer at {', '.join(silent)}", restart
            )
        return ok(f"lists {', '.join(listed)}")


def _upstream(card: dict) -> str | None:
    """A card's upstream when it is on this machine (remote ones are not probed: that leaves it)."""
    url = card.get("upstream_url") or ""
    return url if urlparse(url).hostname in ("127.0.0.1", "localhost") else None


def _answers(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/models", timeout=HTTP_TIMEOUT)
    except httpx.HTTPError:
        return False
    return True
