"""The ``chain`` group: each service works through its own API, end to end.

Open WebUI: its stored connection is the one ops configured (the gateway, the service's key), and it
lists the gateway's models (the classic "model name not listed"). Chainlit: ``/health``. The
WebGPU demo: the page, runtime and model are served with the right MIME types and headers.
"""

from __future__ import annotations

import httpx

from ops.doctor import BaseCheck, Outcome, Repair, fail, ok, register, warn
from ops.doctor.context import DoctorContext
from ops.services import BROWSER_DEMO, JSON_HEALTH, OPENAI_CONNECTION
from ops.services.openwebui import KIND as OPEN_WEBUI
from ops.stack import service_key

HTTP_TIMEOUT = 10.0


def _gateway_url(ctx: DoctorContext) -> str:
    """The gateway's URL as ops wires it into containers (no secret is read for it)."""
    assert ctx.plan is not None  # chain checks run only for a loaded profile
    return ctx.plan.gateway.container_url


def _config(ctx: DoctorContext, service: str) -> tuple[dict, dict]:
    """(Open WebUI's stored OpenAI connection settings, the admin's auth header)."""
    headers = {"authorization": f"Bearer {ctx.openwebui_token(service)}"}
    response = httpx.get(f"{ctx.service_url(service)}/openai/config", headers=headers, timeout=HTTP_TIMEOUT)
    response.raise_for_status()
    return response.json(), headers


def reset_connection(ctx: DoctorContext, service: str) -> str:
    """Point Open WebUI's stored OpenAI connection back at the gateway, with the service's own key."""
    config, headers = _config(ctx, service)
    wanted = _gateway_url(ctx)
    secret = ctx.secret(service_key(service))
    if secret is None:
        from ops.errors import OpsError

        raise OpsError(
            f"no gateway key for {service} in {ctx.state().secrets.path}",
            hint=f"`ops up {ctx.profile_arg}` makes it and gives it to the container",
        )
    key = secret.reveal()
    urls = list(config.get("OPENAI_API_BASE_URLS") or [])
    keys = list(config.get("OPENAI_API_KEYS") or [])
    keys += [""] * (len(urls) - len(keys))
    if wanted in urls:
        index = urls.index(wanted)
    elif len(urls) == 1:
        # The one connection ops configured was changed: put it back.
        urls, index = [wanted], 0
    else:
        # Connections someone added are kept; the gateway goes first.
        urls, keys, index = [wanted, *urls], ["", *keys], 0
    keys[index] = key
    configs = {k: v for k, v in (config.get("OPENAI_API_CONFIGS") or {}).items() if k.isdigit()}
    # ops configured no per-connection settings: no model filter, no prefix, enabled.
    configs[str(index)] = {"enable": True}
    body = {
        "ENABLE_OPENAI_API": True,
        "OPENAI_API_BASE_URLS": urls,
        "OPENAI_API_KEYS": keys[: len(urls)],
        "OPENAI_API_CONFIGS": configs,
    }
    response = httpx.post(
        f"{ctx.service_url(service)}/openai/config/update", json=body, headers=headers, timeout=HTTP_TIMEOUT
    )
    response.raise_for_status()
    return f"{service}: its OpenAI connection points at {wanted} again, with its gateway key"


@register
class OpenWebUIConnectionCheck(BaseCheck):
    """Open WebUI's stored connection settings match what ops configured (URL, key, enabled)."""

    # Named after the kind they were made for (the names are part of `ops doctor --json`).
    name = f"chain.{OPEN_WEBUI}-connection"
    group = "chain"
    depends_on = ("services.container:{service}",)
    features = (OPENAI_CONNECTION,)

    def run(self, ctx: DoctorContext) -> Outcome:
        service, profile = self.for_service, ctx.profile_arg
        config, _ = _config(ctx, service)
        wanted = _gateway_url(ctx)
        key = ctx.secret(service_key(service))
        urls = list(config.get("OPENAI_API_BASE_URLS") or [])
        keys = list(config.get("OPENAI_API_KEYS") or [])
        problems = []
        if not config.get("ENABLE_OPENAI_API"):
            problems.append("its OpenAI connections are switched off")
        if wanted not in urls:
            problems.append(
                f"its stored connection points at {', '.join(urls) or 'nothing'}, not at {wanted}"
            )
        else:
            index = urls.index(wanted)
            stored = keys[index] if index < len(keys) else ""
            if not stored.strip():
                problems.append("the stored key is blank")
            elif key is None or stored != key.reveal():
                problems.append("the stored key differs from the gateway key")
            if ((config.get("OPENAI_API_CONFIGS") or {}).get(str(index)) or {}).get("enable") is False:
                problems.append("the connection is disabled in its settings")
        persistent = _env(ctx, service, "ENABLE_PERSISTENT_CONFIG")
        overrides = persistent is not None and persistent.lower() == "true"
        if problems:
            restart = "" if overrides else f", or `ops restart {profile} {service}` (ops owns these settings)"
            return fail(
                "; ".join(problems)
                + (" (settings saved in Open WebUI override the environment)" if overrides else ""),
                f"`ops doctor {profile} --fix` resets it to the gateway (POST /openai/config/update){restart}",
                Repair(
                    f"reset {service}'s OpenAI connection to the gateway",
                    lambda: reset_connection(ctx, service),
                ),
            )
        if overrides:
            return warn(
                f"points at {wanted} with its gateway key, but ENABLE_PERSISTENT_CONFIG=true: settings saved "
                "in Open WebUI override the environment ops sets",
                f"remove ENABLE_PERSISTENT_CONFIG from `services.{service}.environment`, then `ops up {profile}`",
            )
        return ok(f"points at {wanted} with its gateway key")


def _env(ctx: DoctorContext, service: str, name: str) -> str | None:
    """One variable of the container's environment (the rest, secrets among them, is not read)."""
    container = ctx.containers().get(service)
    for item in (container.attrs.get("Config") or {}).get("Env") or [] if container else []:
        if item.startswith(f"{name}="):
            return item.split("=", 1)[1]
    return None


@register
class OpenWebUIModelsCheck(BaseCheck):
    """Open WebUI lists every model the gateway serves (the "model name not listed" case)."""

    name = f"chain.{OPEN_WEBUI}-models"
    group = "chain"
    depends_on = (f"chain.{OPEN_WEBUI}-connection:{{service}}", "gateway.models", "network.host-gateway")
    features = (OPENAI_CONNECTION,)
    timeout = 30.0

    def run(self, ctx: DoctorContext) -> Outcome:
        service, profile = self.for_service, ctx.profile_arg
        headers = {"authorization": f"Bearer {ctx.openwebui_token(service)}"}
        response = httpx.get(f"{ctx.service_url(service)}/api/models", headers=headers, timeout=25)
        listed = [m.get("id") for m in response.json().get("data", [])] if response.status_code == 200 else []
        states = (ctx.host().health or {}).get("models", {})
        served = [alias for alias, state in states.items() if state == "ready"]
        missing = [alias for alias in served if alias not in listed]
        if missing:
            return fail(
                f"Open WebUI does not list {', '.join(missing)} (it lists: {', '.join(listed) or 'none'})",
                f"`ops doctor {profile} --fix` resets its connection to the gateway and clears its model "
                f"cache (or `ops restart {profile} {service}`); then `ops logs {profile} {service}`",
                Repair(
                    f"reset {service}'s OpenAI connection to the gateway",
                    lambda: reset_connection(ctx, service),
                ),
            )
        return ok(
            f"lists {', '.join(served)}"
            + (f" (and {len(listed) - len(served)} more)" if len(listed) > len(served) else "")
        )


@register
class ChainlitCheck(BaseCheck):
    """Chainlit answers ``GET /health`` with ``{"status": "ok"}``."""

    name = "chain.chainlit"
    group = "chain"
    depends_on = ("services.container:{service}",)
    features = (JSON_HEALTH,)

    def run(self, ctx: DoctorContext) -> Outcome:
        url = f"{ctx.service_url(self.for_service)}/health"
        try:
            response = httpx.get(url, timeout=HTTP_TIMEOUT)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            body, response = {"error": type(exc).__name__}, None
        if response is None or response.status_code != 200 or body.get("status") != "ok":
            return fail(
                f"GET {url}: {body}",
                f"`ops logs {ctx.profile_arg} {self.service}`; Chainlit 2.10 or newer has /health",
            )
        return ok(f"GET {url}: ok")


@register
class WebGpuFilesCheck(BaseCheck):
    """The WebGPU demo serves its page, runtime and model with the right MIME types and COOP/COEP."""

    name = "chain.webgpu-files"
    group = "chain"
    depends_on = ("services.container:{service}",)
    features = (BROWSER_DEMO,)

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.services.webgpu import FILES, check_files

        url = ctx.service_url(self.for_service)
        problems = check_files(url, timeout=HTTP_TIMEOUT)
        if problems:
            return fail(
                "; ".join(problems),
                f"rebuild the image: `ops images build {ctx.profile_arg} {self.service}`, then `ops up {ctx.profile_arg}`",
            )
        return ok(
            f"{len(FILES)} files (page, .mjs, .wasm, model) served with the right types and COOP/COEP; "
            f"open {url}/ over http:// (never file://); the page says when the browser has no WebGPU"
        )
