"""What every check may look at, found once per run and shared: profile, state, Docker, host, secrets.

Everything is computed lazily, on first use, under a per-item lock (checks run in parallel
threads), and an error is remembered like a value: a second check asking for an unreachable
Docker gets the same :class:`~ops.errors.DockerError` at once instead of waiting again.
Nothing here creates state: no secrets are generated, no network or container is made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops import labels
from ops.errors import DockerError, OpsError, ProfileError
from ops.profiles import LoadedProfile
from ops.profiles.loader import load_leniently
from ops.settings import Settings

#: How long doctor waits for the Docker daemon before calling it unreachable.
DOCKER_TIMEOUT = 3.0
#: Label on the throwaway containers doctor starts (never ``ops.stack``: those belong to reconcile).
LABEL_DOCTOR = labels.DOCTOR


class DoctorContext:
    """The shared, lazily filled view of one stack for one doctor run."""

    def __init__(self, profile_ref: str | None, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self.profile_ref = profile_ref
        self.loaded: LoadedProfile | None = None
        self.profile_error: OpsError | None = None
        #: Model folder problems (``models.<alias>.path``) the lenient load set aside for models.files.
        self.folder_problems: dict[str, str] = {}
        if profile_ref is not None:
            self.loaded, self.profile_error, self.folder_problems = load_leniently(profile_ref, self.settings)
        self._values: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- memo -------------------------------------------------------------------------------

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for; later calls get the same value or error."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                try:
                    self._values[key] = (True, compute())
                except Exception as exc:  # remembered and re-raised to every caller
                    self._values[key] = (False, exc)
        good, value = self._values[key]
        if not good:
            raise value
        return value

    # -- the profile ------------------------------------------------------------------------

    @property
    def stack(self) -> str | None:
        """The stack's name, when the profile loaded."""
        return self.loaded.name if self.loaded else None

    def _stack_name(self) -> str:
        """The stack's name, for what needs it; without a loaded profile that cannot be looked at."""
        if self.loaded is None:
            raise ProfileError(
                "the profile did not load, so the stack's containers cannot be found",
                hint=f"fix the profile problem `ops doctor {self.profile_arg}` reports first",
            )
        return self.loaded.name

    @property
    def profile_arg(self) -> str:
        """How to name this profile in a command the user can paste."""
        if self.loaded is None:
            return self.profile_ref or "PROFILE"
        return self.profile_ref if self.profile_ref and "/" not in self.profile_ref else str(self.loaded.path)

    @property
    def plan(self):
        """The resolved :class:`~ops.plan.StackPlan` (the catalog not asked), or ``None`` without a profile."""
        if self.loaded is None:
            return None
        from ops.plan import resolve

        return self.once("plan", lambda: resolve(self.loaded, self.settings, ask_catalog=False))

    def service_kinds(self) -> dict[str, str]:
        """Enabled services and their kinds (empty without a profile)."""
        plan = self.plan
        return {n: s.kind.name for n, s in plan.enabled.items()} if plan else {}

    def state(self):
        """The stack's :class:`~ops.state.StackState` (never created here)."""
        from ops.state import StackState

        assert self.loaded is not None
        return self.once("state", lambda: StackState.for_stack(self.loaded.name, self.settings))

    def specs(self) -> dict:
        """The containers the profile declares (ports, mounts, health), without their environment."""
        plan = self.plan
        assert plan is not None
        return self.once("specs", lambda: {n: s.container(None) for n, s in plan.enabled.items()})

    def service_url(self, service: str) -> str:
        """The service's base URL on this machine (its first published port)."""
        assert self.plan is not None
        return self.plan.services[service].url

    # -- secrets and the model host -------------------------------------------------------------

    def secret(self, name: str):
        """A stored secret or ``None`` (never generated here)."""
        return self.once(f"secret:{name}", lambda: self.state().secrets.get(name))

    def host(self):
        """The model host's :class:`~ops.host.process.HostStatus`."""
        from ops.host import process

        return self.once("host", lambda: process.status(self.state(), timeout=3))

    # -- Docker -------------------------------------------------------------------------------

    def docker(self):
        """A Docker client, or the :class:`DockerError` saying why not (asked once, 3 s at most)."""
        from ops.docker_engine import connect

        return self.once("docker", lambda: connect(timeout=DOCKER_TIMEOUT))

    def engine(self):
        """What kind of engine answers (:class:`ops.engines.Engine`); raises like :meth:`docker`."""
        from ops.engines import detect

        return self.once("engine", lambda: detect(self.docker()))

    def docker_or_none(self):
        """The client, or ``None`` when Docker is unreachable."""
        try:
            return self.docker()
        except DockerError:
            return None

    def containers(self) -> dict:
        """The stack's containers by service (running or not)."""
        from ops import reconcile

        stack = self._stack_name()
        return self.once("containers", lambda: reconcile.containers(self.docker(), stack))

    def network_gateway(self) -> str | None:
        """The stack network's gateway address, or ``None`` when the network does not exist."""
        from ops.network import network_name

        def find() -> str | None:
            name = network_name(self._stack_name())
            for network in self.docker().networks.list(names=[name]):
                if network.name == name:
                    configs = network.attrs.get("IPAM", {}).get("Config") or []
                    return next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
            return None

        return self.once("network-gateway", find)

    def probe_image(self) -> str | None:
        """A local image to start throwaway containers from: the ops base image, else one the stack runs."""
        import docker.errors

        from ops.images.base import BASE_IMAGE

        def find() -> str | None:
            client = self.docker()
            try:
                client.images.get(BASE_IMAGE)
                return BASE_IMAGE
            except docker.errors.ImageNotFound:
                pass
            running = [c for c in self.containers().values() if c.status == "running"] if self.loaded else []
            return running[0].attrs.get("Image") if running else None

        return self.once("probe-image", find)

    # -- Open WebUI ---------------------------------------------------------------------------

    def openwebui_token(self, service: str) -> str:
        """A session token of the generated Open WebUI admin (the stored one while valid, else a sign-in)."""
        from ops.services import openwebui

        def sign_in() -> str:
            email = self.secret(openwebui.ADMIN_EMAIL)
            password = self.secret(openwebui.ADMIN_PASSWORD)
            if email is None or password is None:
                raise OpsError(
                    f"no Open WebUI admin sign-in is stored in {self.state().secrets.path}",
                    hint=f"`ops up {self.profile_arg}` creates it",
                )
            return openwebui.session(
                self.service_url(service),
                self.state().secrets,
                email.reveal(),
                password,
                timeout=10,
                service=service,
            )

        return self.once(f"openwebui-token:{service}", sign_in)

    def close(self) -> None:
        """Release the Docker client, if one was made."""
        good, client = self._values.get("docker", (False, None))
        if good and client is not None:
            client.close()


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest existing parent (where free space and permissions can be read)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")
