"""``ops smoke``: on-device inference and every path to the models, each step pass or fail with its reason.

1. onnxruntime-genai in this process on each local model, on the best device (CUDA when
   ``onnxruntime-genai-cuda`` and a GPU are present, else CPU): load time, first token, tokens/s,
   peak memory; 2. the gateway, streaming and not, for each served model; 3. each running
   service through its own API (Open WebUI chat, the WebGPU demo in a browser when one is here).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from ops import usage
from ops.errors import OpsError
from ops.plan import StackPlan
from ops.runtime.device import choose_device
from ops.settings import Settings
from ops.stack import GATEWAY_KEY
from ops.state import StackState

PROMPT = [{"role": "user", "content": "In one sentence, why run language models on your own device?"}]


@dataclass(frozen=True)
class Step:
    """One smoke step: ``ok``, ``fail`` or ``skip``, why, and what it measured."""

    name: str
    status: str
    detail: str
    metrics: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class SmokeReport:
    """Every step of one ``ops smoke`` run."""

    profile: str
    device: str
    steps: list[Step]

    @property
    def ok(self) -> bool:
        """True when no step failed."""
        return all(s.status != "fail" for s in self.steps)


def in_process(alias: str, folder, device: str, max_tokens: int = 64) -> Step:
    """Load ``folder`` with onnxruntime-genai on ``device`` and generate greedily."""
    import onnxruntime_genai as og

    from ops.runtime.inprocess import InProcessModel

    name = f"in-process {alias} ({device})"
    try:
        config = og.Config(str(folder))
        config.clear_providers()
        if device == "cuda":
            config.append_provider("cuda")
        started = time.perf_counter()
        model = InProcessModel.from_config(config, og)
        load_s = time.perf_counter() - started
        result = model.generate(PROMPT, max_tokens)
    except Exception as exc:  # the runtime raises its own types: any failure is this step's failure
        return Step(name, "fail", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    peak_mb = usage.peak_rss_mb()
    metrics: dict[str, float | str] = {
        "device": device,
        "load_ms": round(load_s * 1000, 1),
        "first_token_ms": round(result.first_token_s * 1000, 1),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "tokens": result.tokens,
        "peak_rss_mb": round(peak_mb, 1),
    }
    if result.tokens == 0:
        return Step(name, "fail", "generated no token", metrics)
    return Step(name, "ok", f"{result.tokens} tokens at {result.tokens_per_s:,.0f} tokens/s", metrics)


def gateway(url: str, key: str, alias: str, stream: bool) -> Step:
    """One chat through the gateway, streamed or not."""
    name = f"gateway {alias} ({'stream' if stream else 'no stream'})"
    body = {"model": alias, "messages": PROMPT, "max_tokens": 32, "temperature": 0, "stream": stream}
    headers = {"authorization": f"Bearer {key}"}
    started = time.perf_counter()
    first, pieces = 0.0, 0
    try:
        with httpx.stream(
            "POST", f"{url}/chat/completions", json=body, headers=headers, timeout=120
        ) as response:
            if response.status_code != 200:
                response.read()
                return Step(name, "fail", f"HTTP {response.status_code}: {response.text[:160]}")
            if stream:
                for line in response.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        if (choices[0].get("delta") or {}).get("content"):
                            pieces += 1
                            first = first or time.perf_counter() - started
            else:
                response.read()
                text = response.json()["choices"][0]["message"]["content"]
                pieces = response.json().get("usage", {}).get("completion_tokens", len(text.split()))
                first = time.perf_counter() - started
    except httpx.HTTPError as exc:
        return Step(name, "fail", f"{type(exc).__name__}: the gateway did not answer", {})
    total = time.perf_counter() - started
    metrics: dict[str, float | str] = {
        "first_token_ms": round(first * 1000, 1),
        "total_ms": round(total * 1000, 1),
        "tokens": pieces,
    }
    if not pieces:
        return Step(name, "fail", "no text came back", metrics)
    return Step(name, "ok", f"{pieces} tokens in {total * 1000:.0f} ms", metrics)


def run(plan: StackPlan, device: str = "auto", say: Callable[[str], None] = lambda _: None) -> SmokeReport:
    """Every smoke step for ``plan``; a stack that does not run fails its steps with the fix."""
    from ops.host import process

    settings = Settings.from_env()
    chosen, why = choose_device(device)
    say(f"device: {chosen} ({why})")
    steps: list[Step] = []
    local = {m.alias: m.folder for m in plan.models if m.folder is not None}
    for alias, folder in local.items():
        say(f"in-process {alias}")
        steps.append(in_process(alias, folder, chosen))
    state = StackState.for_stack(plan.name, settings)
    host = process.status(state)
    key = state.secrets.get(GATEWAY_KEY)
    served = [a for a, s in ((host.health or {}).get("models") or {}).items() if s == "ready"]
    if not host.running or host.info is None or key is None:
        steps.append(
            Step(
                "gateway",
                "fail",
                f"the model host of {plan.name} is not running: run `ops up {plan.name}`",
            )
        )
    else:
        for alias in served:
            for stream in (True, False):
                say(f"gateway {alias}")
                steps.append(gateway(f"{host.info.url}/v1", key.reveal(), alias, stream))
    steps.extend(_services(plan, state, tuple(local) or plan.served, say))
    return SmokeReport(plan.name, chosen, steps)


def _services(plan: StackPlan, state: StackState, models: tuple[str, ...], say) -> list[Step]:
    from ops import reconcile

    if not plan.enabled:
        return []
    try:
        from ops.docker_engine import connect

        running = reconcile.containers(connect(), plan.name)
    except OpsError as exc:
        return [Step("services", "fail", f"{exc.message} ({exc.hint})")]
    key = state.secrets.get(GATEWAY_KEY)
    ctx = plan.wiring(state.secrets, key, models) if key is not None else None
    steps = []
    for name, service in plan.enabled.items():
        container = running.get(name)
        if container is None or container.status != "running" or ctx is None:
            steps.append(Step(name, "fail", f"not running: run `ops up {plan.name}`"))
            continue
        url = service.url
        kind = service.kind
        say(f"{name} through its own API")
        if kind.chain:
            try:
                report = kind.chain(ctx.for_service(name), url, 120)
                detail = report.detail or f"{len(report.models)} models listed; a chat answered"
                steps.append(Step(f"{name} API", "ok", detail))
            except OpsError as exc:
                steps.append(Step(f"{name} API", "fail", exc.message))
        if kind.browser_check is not None:
            steps.append(_browser(name, url, kind.browser_check))
    return steps


def _browser(name: str, url: str, check: Callable[[str], tuple[str, dict[str, str]]]) -> Step:
    from ops.runtime.browser import find_chromium

    if find_chromium() is None:
        return Step(f"{name} browser", "skip", "no Chromium here (`just chromium` installs Debian's)")
    try:
        detail, metrics = check(url)
    except ImportError:
        return Step(f"{name} browser", "skip", "Playwright is not installed (pip install playwright)")
    except OpsError as exc:
        return Step(f"{name} browser", "fail", exc.message)
    return Step(f"{name} browser", "ok", detail, dict(metrics))
