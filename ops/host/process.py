"""The model host as a background process: start once per stack, find it, wait for it, stop it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psutil
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

from ops import interrupt, procs
from ops.errors import ConflictError, ModelError, ProbeTimeout
from ops.host import ports
from ops.host.config import HostConfig, HostExposure
from ops.host.info import HostInfo
from ops.locks import file_lock
from ops.private import open_private
from ops.state import StackState

if TYPE_CHECKING:
    from ops.plan import StackPlan

#: Called while waiting with the parsed /health body (model states and progress).
Watcher = Callable[[dict], None]


@dataclass(frozen=True)
class HostStatus:
    """What is known about a stack's host: running, stale (pid file of a dead process), or absent."""

    stack: str
    running: bool
    stale: bool
    info: HostInfo | None
    health: dict | None
    log_file: Path


#: Seconds two readings of one process's start time may differ by. psutil gives it as the boot time
#: plus the ticks since boot; the kernel recomputes the boot time from the clock, and two processes
#: reading it a moment apart were seen to disagree by a second. The exact argv must match as well.
START_TIME_SLACK = 2.0


def identify(info: HostInfo) -> psutil.Process | None:
    """The process ``info`` records, or ``None`` when that pid is now another process (or none).

    A pid file outlives its process (a crash, a reboot), and the system reuses pids: the process
    must have the start time and the exact argv recorded when the host started. A record without
    them (written by an older ``ops``) cannot be checked and counts as stale. The returned
    ``psutil.Process`` keeps checking its own start time, so signalling it cannot reach a newer
    process that was given the same pid since.
    """
    if not info.create_time or not info.argv:
        return None
    try:
        found = psutil.Process(info.pid)
        same = (
            abs(found.create_time() - info.create_time) < START_TIME_SLACK
            and tuple(found.cmdline()) == info.argv
        )
        return found if same and found.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def is_host(info: HostInfo) -> bool:
    """True when ``info``'s process is the host that wrote it (see :func:`identify`)."""
    return identify(info) is not None


def status(state: StackState, timeout: float = 2.0) -> HostStatus:
    """The host's status; asks its ``/health`` when it runs."""
    info = HostInfo.read(state.pid_file)
    if info is None:
        return HostStatus(state.name, False, False, None, None, state.log_file)
    if not is_host(info):
        return HostStatus(state.name, False, True, info, None, state.log_file)
    try:
        health = httpx.get(f"{info.url}/health", timeout=timeout).json()
    except (httpx.HTTPError, ValueError):
        health = None
    return HostStatus(state.name, True, False, info, health, state.log_file)


def _locked(state: StackState):
    """Serialise host starts and stops of one stack across processes."""
    return file_lock(state.root / "host.lock")


def start(
    plan: StackPlan,
    state: StackState,
    addresses: list[str],
    timeout: float = 600.0,
    watch: Watcher | None = None,
    expose: HostExposure | None = None,
) -> tuple[HostInfo, bool]:
    """Start the stack's host in the background unless it runs; wait until ready. Returns (info, reused).

    The child gets its whole configuration from ``plan`` (written to ``host.json`` in the stack's
    state folder): it neither parses the profile nor asks the catalog again. ``expose``: the TLS
    listeners it runs on the exposed address.
    """
    config = HostConfig.from_plan(plan, addresses, expose)
    with _locked(state):
        current = status(state)
        if current.running and current.info:
            same = (
                current.info.port == config.port
                and set(current.info.addresses) == set(addresses)
                and current.info.fingerprint == config.fingerprint()
            )
            if same:
                wait_ready(current.info, None, state, timeout, watch)
                return current.info, True
            # The profile's models or gateway changed since it started: replace it, as reconcile
            # replaces a container whose spec changed.
            if watch:
                watch({"replacing": "the profile's models or gateway settings changed"})
            _stop(state, current.info)
            current = status(state)
        if current.stale:
            state.pid_file.unlink(missing_ok=True)
        # A host that has just died may hold its port a moment longer: wait for it then, only.
        _check_free_after_a_death(addresses, config.port, timeout=10.0 if current.stale else 0.0)
        if config.expose is not None:  # the TLS listeners' ports on the exposed address, likewise
            for port, _host, _port in config.expose.listeners:
                _check_free_after_a_death([config.expose.address], port, 10.0 if current.stale else 0.0)
        config.write(state.host_config)
        args = ["-m", "ops", "host", "run", "--config", str(state.host_config)]
        # The child must use the same state home as this process, whatever the environment says.
        env = {**os.environ, "OPS_HOME": str(state.root.parent.parent)}
        # The log may hold what models were asked: readable by its owner only, like the secrets
        # (an older log made 0644 is tightened too).
        with os.fdopen(open_private(state.log_file, os.O_WRONLY | os.O_APPEND), "ab") as log:
            process = procs.start_python(args, env, log)  # detached from this terminal
        info = _wait_pid_file(state, process, timeout=60)
        wait_ready(info, process, state, timeout, watch)
        return info, False


def _wait_pid_file(state: StackState, process: subprocess.Popen, timeout: float) -> HostInfo:
    def check() -> HostInfo | None:
        if process.poll() is not None:
            raise _died(state, process.returncode)
        info = HostInfo.read(state.pid_file)
        return info if info and info.pid == process.pid else None

    try:
        return _poll(check, interval=0.05, timeout=timeout)
    except RetryError:
        process.terminate()
        raise ProbeTimeout(
            f"the model host did not start within {timeout:g} s", hint=_log_hint(state)
        ) from None


def _poll(check: Callable[[], object], interval: float, timeout: float):
    """Call ``check`` until it returns something other than ``None``; its exceptions end the wait."""
    retrying = Retrying(
        wait=wait_fixed(interval),
        stop=stop_after_delay(timeout),
        retry=retry_if_result(lambda r: r is None),
        sleep=interrupt.sleep,  # Ctrl-C ends the wait at once (ops.interrupt)
    )
    return retrying(check)


def wait_ready(
    info: HostInfo,
    process: subprocess.Popen | None,
    state: StackState,
    timeout: float,
    watch: Watcher | None = None,
) -> dict:
    """Poll ``/health`` until every model is ready; fail early if the process dies or a model fails."""

    def probe() -> dict | None:
        if process is not None and process.poll() is not None:
            raise _died(state, process.returncode)
        try:
            response = httpx.get(f"{info.url}/health", timeout=2)
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if watch:
            watch(body)
        failed = {
            alias: body.get("details", {}).get(alias, "")
            for alias, s in body.get("models", {}).items()
            if s == "failed"
        }
        if failed and all(
            s in ("failed", "ready", "unloaded", "unavailable") for s in body.get("models", {}).values()
        ):
            alias, why = next(iter(failed.items()))
            raise ModelError(f"model {alias!r} failed to load: {why}", hint=_log_hint(state))
        return body if response.status_code == 200 else None

    try:
        return _poll(probe, interval=0.1, timeout=timeout)
    except RetryError:
        raise ProbeTimeout(
            f"the model host was not ready within {timeout:g} s ({info.url}/health)", hint=_log_hint(state)
        ) from None


def stop(state: StackState, timeout: float = 20.0) -> bool:
    """Ask the stack's host to stop and wait; kill it after ``timeout``. True if one was running."""
    with _locked(state):
        current = status(state, timeout=0.5)
        if not current.running or current.info is None:
            if current.stale:
                state.pid_file.unlink(missing_ok=True)
            return False
        _stop(state, current.info, timeout)
        return True


def _stop(state: StackState, info: HostInfo, timeout: float = 20.0) -> None:
    """Ask the host ``info`` records to stop and wait; kill it after ``timeout``. The caller holds the host lock.

    Asking is SIGTERM, or Ctrl+Break on Windows (:func:`ops.procs.ask_to_stop`); a host that cannot
    be asked is killed at once. Only the process :func:`identify` recognises is signalled; any
    other is left alone.
    """
    process = identify(info)
    if process is not None:
        try:
            asked = procs.ask_to_stop(process)
            try:
                process.wait(timeout if asked else 0)
            except psutil.TimeoutExpired:
                process.kill()
                process.wait(5)
        except psutil.NoSuchProcess:
            pass  # it ended by itself meanwhile
    state.pid_file.unlink(missing_ok=True)


def _check_free_after_a_death(addresses: list[str], port: int, timeout: float = 10.0) -> None:
    """``ports.check_free``, retried for a while: the host that held the port has just died.

    A killed multi-threaded process is gone from the process table as soon as its main thread
    exits, while its other threads still hold its files, the listening sockets among them:
    starting a new host at that moment found the gateway's port "already in use" by the host that
    had just died. Anything else still holding the port after ``timeout`` is reported as usual.
    """
    for attempt in Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(0.1),
        sleep=interrupt.sleep,
        retry=retry_if_exception_type(ConflictError),
        reraise=True,
    ):
        with attempt:
            ports.check_free(addresses, port)


def last_log_lines(state: StackState, count: int = 30) -> list[str]:
    """The last ``count`` lines of the host's log."""
    try:
        lines = state.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return lines[-count:]


def _died(state: StackState, code: int | None) -> ModelError:
    tail = [line for line in last_log_lines(state, 12) if line.strip()]
    reason = next(
        (line for line in reversed(tail) if line.startswith("error:")), tail[-1] if tail else "no output"
    )
    return ModelError(f"the model host exited (code {code}): {reason}", hint=_log_hint(state))


def _log_hint(state: StackState) -> str:
    return f"see the host log: {state.log_file} (or run `ops host run` in the foreground)"
