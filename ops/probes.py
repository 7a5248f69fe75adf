"""Readiness probes: HTTP (status and body), TCP, and a container's own health, with evidence on failure.

A probe answers one question once (:meth:`Probe.check`); :func:`wait_for` asks it again through
tenacity until it passes or the timeout ends, then raises :class:`~ops.errors.ProbeTimeout`
naming the probe, its target, the last answer, and the log tail the caller supplies.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from ops import interrupt
from ops.docker_engine import Container
from ops.errors import ProbeTimeout


@dataclass(frozen=True)
class ProbeResult:
    """One answer of a probe."""

    ok: bool
    detail: str


class Probe(Protocol):
    """A readiness check; ``target`` says what it looks at (a URL, an address, a container)."""

    @property
    def target(self) -> str:
        """What the probe looks at."""

    def check(self) -> ProbeResult:
        """Ask once; never raises for a not-ready target."""


@dataclass(frozen=True)
class HttpProbe:
    """``GET url`` answers ``status`` and (optionally) a body containing ``body``."""

    url: str
    status: int = 200
    body: str | None = None
    timeout: float = 3.0

    @property
    def target(self) -> str:
        return f"GET {self.url}"

    def check(self) -> ProbeResult:
        try:
            response = httpx.get(self.url, timeout=self.timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            return ProbeResult(False, f"{type(exc).__name__}: {str(exc)[:120] or 'no answer'}")
        if response.status_code != self.status:
            return ProbeResult(False, f"HTTP {response.status_code}, expected {self.status}")
        if self.body is not None and self.body not in response.text:
            return ProbeResult(False, f"body lacks {self.body!r}: {response.text[:120]!r}")
        return ProbeResult(True, f"HTTP {response.status_code}")


@dataclass(frozen=True)
class TcpProbe:
    """A TCP connect to ``host:port`` succeeds."""

    host: str
    port: int
    timeout: float = 2.0

    @property
    def target(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def check(self) -> ProbeResult:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout):
                return ProbeResult(True, "connected")
        except OSError as exc:
            return ProbeResult(False, exc.strerror or type(exc).__name__)


@dataclass(frozen=True)
class ContainerProbe:
    """A container runs (and, when it has a HEALTHCHECK, reports healthy)."""

    container: Container

    @property
    def target(self) -> str:
        return f"container {getattr(self.container, 'name', '?')}"

    def check(self) -> ProbeResult:
        import docker.errors

        try:
            self.container.reload()
        except docker.errors.NotFound:
            return ProbeResult(False, "container is gone")
        state = self.container.attrs.get("State", {})
        if state.get("Status") != "running":
            return ProbeResult(False, f"{state.get('Status')} (exit code {state.get('ExitCode')})")
        health = (state.get("Health") or {}).get("Status")
        if health and health != "healthy":
            return ProbeResult(False, f"health {health}")
        return ProbeResult(True, "running" + (f", {health}" if health else ""))


def wait_for(
    probe: Probe,
    timeout: float,
    interval: float = 0.5,
    evidence: Callable[[], list[str]] | None = None,
    hint: str | None = None,
    fail_fast: Callable[[], str | None] | None = None,
) -> ProbeResult:
    """Ask ``probe`` until it passes; on timeout raise :class:`ProbeTimeout` with its evidence.

    ``fail_fast`` may return a reason to stop waiting at once (for example: the container exited
    and will not come back); ``evidence`` gives the log lines to attach to the error. Ctrl-C
    (see :mod:`ops.interrupt`) ends the wait at once with :class:`~ops.interrupt.Cancelled`.
    """
    last = ProbeResult(False, "not asked yet")
    started = time.monotonic()

    def attempt() -> ProbeResult | None:
        nonlocal last
        interrupt.check()
        last = probe.check()
        if last.ok:
            return last
        reason = fail_fast() if fail_fast else None
        if reason:
            raise _timeout(probe, last, time.monotonic() - started, reason, evidence, hint)
        return None

    retrying = Retrying(
        wait=wait_fixed(interval),
        stop=stop_after_delay(timeout),
        retry=retry_if_result(lambda r: r is None),
        sleep=interrupt.sleep,
    )
    try:
        result = retrying(attempt)
    except RetryError:
        raise _timeout(probe, last, timeout, None, evidence, hint) from None
    assert result is not None  # a None answer is retried until RetryError, so a returned one is a ProbeResult
    return result


def _timeout(probe, last, waited, reason, evidence, hint) -> ProbeTimeout:
    why = reason or f"not ready after {waited:.0f} s"
    error = ProbeTimeout(
        f"{probe.target}: {why} (last answer: {last.detail})",
        hint=hint or "see the log lines above; raise the service's `health.timeout` if it is only slow",
    )
    error.evidence = evidence() if evidence else []
    return error
