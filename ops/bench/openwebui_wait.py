"""Benchmark a participant's wait in Open WebUI, in a real browser: background generations on and off.

After every answer Open WebUI asks the chat model again, for follow-up questions, a title and tags
(see :data:`ops.services.openwebui.BACKGROUND_TASKS`); ``ops`` turns these off by default. This
measures what that changes for the person at the keyboard. The profile's stack is brought up twice
through the library (``ops up``): once with the generations turned back on through the Open WebUI
service's ``environment`` (the override a profile would write), once with ``ops``'s defaults. Each
time, Debian's Chromium signs in through the real page and sends the same messages, each in a new
chat, each as soon as the previous answer is complete (a participant asking the next question
straight away; ``--pause`` waits that long first), after one warm-up message that is not counted.
Per message it measures, in the page:

- first visible text: from pressing Enter to the first non-blank text of the assistant's answer;
- complete answer: from pressing Enter to the message's action buttons appearing, which Open WebUI
  renders only once the stream has ended (``message.done``).

The gateway counts the chat completions the messages cause: the chats go to a virtual model of the
gateway's router (one candidate, the chat model), whose requests ``/ops/metrics`` counts, so Open
WebUI's own follow-up, title and tag requests (sent to the chat model too) are counted beside the
answers. After the last message the count must stay still for a while before it is read. (The router
costs both conditions alike, about 10 ms of first token: 264 against 251 ms p50, measured here.)

    ops bench-openwebui [PROFILE] [--messages 5] [--pause S] [--model ALIAS] [--keep] [--json]

The stack is taken down afterwards (volumes kept) unless ``--keep``. Needs Playwright's Python
package and ``/usr/bin/chromium``, like :mod:`ops.bench.webgpu`; both launch it with :mod:`ops.runtime.browser`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from ops import lifecycle, profiles
from ops.bench.openwebui_variant import ANSWER_TIMEOUT_MS, COUNTED, chat_model, service_name, write_variant
from ops.bench.stats import median
from ops.errors import OpsError
from ops.plan import resolve
from ops.runtime.browser import launch_chromium
from ops.secrets import SecretStore
from ops.services import openwebui
from ops.stack import GATEWAY_KEY
from ops.state import StackState

#: Open WebUI's background generations turned back on, as a profile's environment would.
ON = dict.fromkeys(openwebui.BACKGROUND_TASKS, "true")
PROMPTS = (
    "Name three benefits of on-device AI inference.",
    "What is a small language model?",
    "Explain in two sentences what a GPU does.",
    "Give me a tip for writing a good prompt.",
    "Why would a workshop run its models offline?",
    "What is the difference between training and inference?",
    "Suggest a name for a friendly chatbot.",
    "What does an API key protect?",
)
WARM_UP = "Say hello."
PAGE_TIMEOUT_MS = 120_000
#: After the last answer, the gateway's count must not move for a while before it is read. Each
#: request is counted when it starts, and Open WebUI starts a message's next background generation
#: when the previous one ends: the quiet time must outlast one generation, so it is the longer of
#: this and 1.5 times the slowest answer seen.
SETTLE_S = 12.0
SETTLE_LIMIT_S = 900.0

# Installed in the page before a message is sent: records, on the page's clock, the Enter that sends
# it, the first non-blank text of the (only) assistant answer of the new chat, its last change, and
# the moment the answer's action buttons appear: Open WebUI renders them in the message's `.buttons`
# row (beside `.chat-assistant`, not inside it) only once the message is done.
_WATCH = """() => {
  const w = { sent: null, first: null, last: null, done: null, text: "" };
  window.__opsWait = w;
  window.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && w.sent === null) w.sent = performance.now();
  }, true);
  const look = () => {
    const box = document.querySelector(".chat-assistant #response-content-container");
    if (!box || w.sent === null) return;
    const now = performance.now();
    const text = box.textContent.trim();
    if (text && w.first === null) w.first = now;
    if (text !== w.text) { w.text = text; w.last = now; }
    const message = box.closest('[id^="message-"]');
    if (w.done === null && message && message.querySelector(".buttons button")) w.done = now;
  };
  new MutationObserver(look).observe(document.body, { childList: true, subtree: true, characterData: true });
}"""


@dataclass(frozen=True)
class MessageWait:
    """One message, seen in the browser: seconds from pressing Enter, and the answer's length."""

    prompt: str
    first_text_s: float
    complete_s: float
    last_change_s: float
    chars: int


@dataclass(frozen=True)
class ConditionResult:
    """One condition's messages and the chat requests the gateway saw for them."""

    condition: str
    environment: dict[str, str]
    messages: tuple[MessageWait, ...]
    chat_requests: int

    @property
    def stream_rate(self) -> float:
        """Median characters per second from an answer's first text to its end: answers differ in
        length, and this shows how fast each was streamed."""
        rates = [
            m.chars / (m.complete_s - m.first_text_s) for m in self.messages if m.complete_s > m.first_text_s
        ]
        return median(rates)

    @property
    def requests_per_message(self) -> float:
        """Chat completions at the gateway per user message (answers and background generations)."""
        return self.chat_requests / len(self.messages) if self.messages else 0.0


@dataclass(frozen=True)
class OpenWebUIWait:
    """Everything one benchmark run measured."""

    stack: str
    model: str
    browser: str
    pause_s: float
    results: tuple[ConditionResult, ...]


class GatewayCount:
    """Reads how many chat requests the gateway's router received for the counted model."""

    def __init__(self, gateway_url: str, key: str, name: str = COUNTED):
        self.url = gateway_url.removesuffix("/").removesuffix("/v1") + "/ops/metrics"
        self.headers = {"authorization": f"Bearer {key}"}
        self.name = name

    def now(self) -> int:
        """The count so far."""
        response = httpx.get(self.url, headers=self.headers, timeout=10)
        response.raise_for_status()
        return int(response.json().get("routing", {}).get(f"requests:{self.name}", 0))

    def settled(self, quiet: float = SETTLE_S, limit: float = SETTLE_LIMIT_S) -> int:
        """The count once it has not moved for ``quiet`` seconds (at most ``limit`` seconds of waiting)."""
        deadline = time.monotonic() + limit
        count, since = self.now(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            latest = self.now()
            if latest != count:
                count, since = latest, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return count


def sign_in(page, url: str, email: str, password: str) -> None:
    """Sign in through Open WebUI's own page and close the release notes a fresh admin is shown."""
    page.goto(f"{url}/auth", wait_until="load", timeout=PAGE_TIMEOUT_MS)
    # The form is rendered by the front end once its config call answers: under load, a while after load.
    page.wait_for_selector("#email", timeout=PAGE_TIMEOUT_MS)
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/", timeout=PAGE_TIMEOUT_MS)
    with contextlib.suppress(Exception):
        page.get_by_text("Okay, Let's Go!").click(timeout=5_000)


def send(page, url: str, model: str, prompt: str, timeout_ms: int = ANSWER_TIMEOUT_MS) -> MessageWait:
    """Open a new chat with ``model``, type ``prompt``, press Enter; return the wait once the answer is done."""
    page.goto(f"{url}/?model={quote(model)}", wait_until="load", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_selector("#chat-input", timeout=PAGE_TIMEOUT_MS)
    page.evaluate(_WATCH)
    page.click("#chat-input")
    page.keyboard.type(prompt)
    page.keyboard.press("Enter")
    try:
        page.wait_for_function("() => window.__opsWait.done !== null", timeout=timeout_ms, polling=100)
    except Exception as exc:
        seen = page.evaluate("() => window.__opsWait")
        raise OpsError(
            f"Open WebUI's answer to {prompt!r} did not complete within {timeout_ms / 1000:.0f} s "
            f"(sent: {seen.get('sent') is not None}, text so far: {seen.get('text', '')[:80]!r})",
            hint=f"see `ops logs PROFILE {openwebui.KIND}` and the host log (`ops logs PROFILE`)",
        ) from exc
    seen = page.evaluate("() => window.__opsWait")
    if not seen.get("text"):
        raise OpsError(
            f"Open WebUI's answer to {prompt!r} ended without text",
            hint=f"see `ops logs PROFILE {openwebui.KIND}`",
        )
    sent = seen["sent"]
    return MessageWait(
        prompt=prompt,
        first_text_s=(seen["first"] - sent) / 1000,
        complete_s=(seen["done"] - sent) / 1000,
        last_change_s=(seen["last"] - sent) / 1000,
        chars=len(seen["text"]),
    )


def measure(
    browser,
    url: str,
    credentials: tuple[str, str],
    count: GatewayCount,
    prompts: tuple[str, ...],
    pause: float,
    say,
) -> tuple[tuple[MessageWait, ...], int]:
    """Sign in, send a warm-up message and then ``prompts``, ``pause`` s apart; return their waits and
    the chat requests they caused."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        sign_in(page, url, *credentials)
        say("warm-up message (not counted)")
        warm = send(page, url, COUNTED, WARM_UP)
        before = count.settled(max(SETTLE_S, 1.5 * warm.complete_s))
        waits: list[MessageWait] = []
        for index, prompt in enumerate(prompts):
            if waits and pause:
                time.sleep(pause)
            waits.append(send(page, url, COUNTED, prompt))
            say(f"message {index + 1}/{len(prompts)}: {waits[-1].complete_s:.2f} s")
        quiet = max(SETTLE_S, 1.5 * max(w.complete_s for w in waits))
        say(f"waiting for the gateway's count to settle ({quiet:.0f} s without a new request)")
        requests = count.settled(quiet) - before
    finally:
        context.close()
    if requests < len(prompts):
        raise OpsError(
            f"the gateway counted {requests} chat requests for {len(prompts)} messages: "
            f"the chats did not go to the model {COUNTED}",
            hint="Open WebUI may not list the gateway's virtual models: check `ops doctor`",
        )
    return tuple(waits), requests


def run(
    ref: str = "offline",
    messages: int = 5,
    model: str | None = None,
    keep: bool = False,
    pause: float = 0.0,
    say: Callable[[str], None] = lambda _: None,
) -> OpenWebUIWait:
    """Bring ``ref`` up with Open WebUI's background generations on, then off; measure each in Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise OpsError(
            "Playwright's Python package is not installed",
            hint="pip install 'playwright==1.65.2' (a dev dependency); never run `playwright install`.",
        ) from exc
    loaded = profiles.load(ref)
    service, target = service_name(loaded), chat_model(loaded, model)
    prompts = tuple(PROMPTS[i % len(PROMPTS)] for i in range(messages))
    conditions: tuple[tuple[str, str, dict[str, str]], ...] = (
        ("on", "background generations on", ON),
        ("off", "off (ops defaults)", {}),
    )
    state = StackState.for_stack(loaded.name).ensure()
    written: list[Path] = []
    results = []
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright, webgpu=False)
            try:
                for tag, condition, environment in conditions:
                    # In the stack's own state folder: the host started from it reads it there.
                    written.append(state.root / f"bench-openwebui-{tag}.yaml")
                    wanted = write_variant(loaded, service, target, environment, written[-1])
                    say(f"ops up {loaded.name}: Open WebUI with {condition} ({written[-1]})")
                    report = lifecycle.up(resolve(wanted), say=say)
                    url = next(s.url for s in report.services if s.service == service)
                    secrets = state.secrets
                    count = GatewayCount(report.gateway_url, _made_by_up(secrets, GATEWAY_KEY, loaded.name))
                    credentials = (
                        _made_by_up(secrets, openwebui.ADMIN_EMAIL, loaded.name),
                        _made_by_up(secrets, openwebui.ADMIN_PASSWORD, loaded.name),
                    )
                    waits, requests = measure(browser, url, credentials, count, prompts, pause, say)
                    results.append(ConditionResult(condition, environment, waits, requests))
                version = browser.version
            finally:
                browser.close()
    finally:
        if not keep:
            say(f"ops down {loaded.name} (volumes kept)")
            lifecycle.down(resolve(loaded, ask_catalog=False))
            for path in written:
                path.unlink(missing_ok=True)
    return OpenWebUIWait(loaded.name, target, f"Chromium {version}", pause, tuple(results))


def _made_by_up(secrets: SecretStore, name: str, stack: str) -> str:
    """A secret ``ops up`` creates for the stack (the gateway key, Open WebUI's admin account)."""
    value = secrets.get(name)
    if value is None:
        raise OpsError(
            f"stack {stack} has no secret {name} after `ops up`",
            hint=f"`ops down {stack}` and `ops up {stack}` create it again",
        )
    return value.reveal()


def render(result: OpenWebUIWait) -> str:
    """The figures as plain text lines."""
    lines = [
        f"Open WebUI in {result.browser}, stack {result.stack}, model {result.model}: "
        f"{len(result.results[0].messages)} messages per condition, each in a new chat, "
        + (f"{result.pause_s:g} s after the previous answer" if result.pause_s else "back to back"),
        f"{'condition':<28}{'first text p50':>15}{'max':>8}{'complete p50':>14}{'max':>8}"
        f"{'answer p50':>12}{'streamed p50':>14}{'chat requests/message':>23}",
    ]
    for r in result.results:
        first = [m.first_text_s for m in r.messages]
        done = [m.complete_s for m in r.messages]
        chars = median([m.chars for m in r.messages])
        lines.append(
            f"{r.condition:<28}{median(first):>13.2f} s{max(first):>6.2f} s{median(done):>12.2f} s"
            f"{max(done):>6.2f} s{chars:>6.0f} chars{r.stream_rate:>6.0f} chars/s"
            f"{r.requests_per_message:>23.1f}"
        )
    lines.append(
        "first text: Enter to the answer's first visible text; complete: Enter to its action buttons "
        "(stream ended); requests: chat completions the gateway received, background generations included"
    )
    return "\n".join(lines)
