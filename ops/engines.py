"""Which Docker engine answers, and what that means for ``ops``: who may start it, how its containers reach the host.

Read from the engine's own ``/info`` and ``/version`` answers (``docker info``), never guessed from
the platform ``ops`` runs on alone: a Linux laptop may run Docker Desktop, a Mac may run Colima.

======================  ============================================================================
kind                    what ``ops`` does
======================  ============================================================================
``linux``               A native Linux engine on this machine. The gateway listens on the stack
                        network's gateway address too, and containers map ``host.docker.internal``
                        to it. ``just docker`` may install and start it (as root).
``desktop``             Docker Desktop (Windows, macOS, or Linux), running in its own VM.
                        ``host.docker.internal`` is built in and Desktop forwards it to the host's
                        loopback, so the gateway listens on 127.0.0.1 only (never on the LAN) and
                        containers keep Desktop's own mapping. ``ops`` never installs or starts it.
``rootless``            A rootless engine: its bridge lives in another network namespace, so the
                        gateway cannot listen on it; containers reach the host only where the engine
                        forwards the host's loopback. ``ops doctor`` says so.
``vm``                  Another engine in a VM (Colima, OrbStack, Rancher Desktop, Podman): treated
                        like Docker Desktop; not run here, so ``ops doctor`` says it is unverified.
``remote``              An engine on another machine (``tcp://`` or ``ssh://``): its containers
                        cannot reach a gateway on this machine's loopback.
======================  ============================================================================
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

Kind = Literal["linux", "desktop", "rootless", "vm", "remote"]

#: The label Docker Desktop puts on its engine: where its CLI socket or pipe is on the host.
DESKTOP_LABEL = "com.docker.desktop.address="

_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
_OTHER_VMS = (
    ("orbstack", "OrbStack"),
    ("colima", "Colima"),
    ("rancher desktop", "Rancher Desktop"),
    ("rancher-desktop", "Rancher Desktop"),
    ("podman", "Podman"),
)


@dataclass(frozen=True)
class Engine:
    """One Docker engine as ``ops`` sees it (see the module's table for what each ``kind`` means)."""

    kind: Kind
    #: A human name: "Docker Desktop 4.37.1 on Windows (WSL 2)", "Docker Engine 28.2.2 on Debian", ...
    name: str
    #: The host system the engine runs for: "windows", "macos" or "linux".
    host_os: str
    #: How a VM engine runs its Linux: "WSL 2", "Hyper-V", "macOS virtualization", or "" (none/unknown).
    backend: str
    #: The engine's CPU architecture as it reports it (x86_64, aarch64).
    arch: str
    #: Memory and CPUs the engine has: for a VM engine, what its VM was given.
    memory_bytes: int
    cpus: int
    #: Where the engine keeps images, containers and volumes, as the engine sees it.
    root_dir: str

    @property
    def in_vm(self) -> bool:
        """Whether the engine runs in a VM, so its files and bridge are not this machine's."""
        return self.kind in ("desktop", "vm")

    @property
    def ops_may_start(self) -> bool:
        """Whether ``ops``'s set-up may install or start this engine (only a native Linux one, as root)."""
        return self.kind == "linux"

    @property
    def forwards_host_loopback(self) -> bool:
        """Whether ``host.docker.internal`` in a container reaches a server on the host's 127.0.0.1."""
        return self.kind in ("desktop", "vm")

    @property
    def bridge_on_host(self) -> bool:
        """Whether the stack network's gateway address is an address of this machine (the gateway can bind it)."""
        return self.kind == "linux"


def classify(
    info: dict, version: dict | None = None, endpoint: str = "", platform: str | None = None
) -> Engine:
    """The :class:`Engine` behind a ``/info`` answer (and ``/version``, for Desktop's release).

    ``endpoint`` is where the client connected (``DOCKER_HOST`` or the context's); ``platform`` is
    ``sys.platform`` of the machine ``ops`` runs on (a parameter so tests can pass any).
    """
    version = version or {}
    platform = platform or sys.platform
    labels = [str(label) for label in info.get("Labels") or []]
    operating_system = str(info.get("OperatingSystem") or "")
    kernel = str(info.get("KernelVersion") or "")
    name = str(info.get("Name") or "")
    security = " ".join(str(s) for s in info.get("SecurityOptions") or [])
    server = str(info.get("ServerVersion") or version.get("Version") or "unknown")
    platform_name = str((version.get("Platform") or {}).get("Name") or "")
    desktop_address = next(
        (label[len(DESKTOP_LABEL) :] for label in labels if label.startswith(DESKTOP_LABEL)), ""
    )
    arch = str(info.get("Architecture") or version.get("Arch") or "unknown")
    memory, cpus = int(info.get("MemTotal") or 0), int(info.get("NCPU") or 0)
    root = str(info.get("DockerRootDir") or "/var/lib/docker")

    def engine(kind: Kind, title: str, host_os: str, backend: str = "") -> Engine:
        return Engine(kind, title, host_os, backend, arch, memory, cpus, root)

    if desktop_address or operating_system == "Docker Desktop" or platform_name.startswith("Docker Desktop"):
        host_os = _desktop_host(desktop_address, platform)
        backend = _desktop_backend(kernel, host_os)
        release = re.search(r"Docker Desktop ([0-9][0-9.]*)", platform_name)
        title = f"Docker Desktop {release.group(1)}" if release else "Docker Desktop"
        title += f" on {_OS_NAMES[host_os]}" + (f" ({backend})" if backend else "")
        return engine("desktop", f"{title}, engine {server}", host_os, backend)
    host_os = _os_of(platform)
    if _is_remote(endpoint):
        where = urlparse(endpoint).hostname or endpoint
        return engine("remote", f"Docker Engine {server} on {where}", "linux")
    lowered = f"{name} {operating_system} {platform_name} {kernel}".lower()
    for needle, vm_name in _OTHER_VMS:
        if needle in lowered:
            return engine("vm", f"{vm_name} (Docker Engine {server})", host_os)
    if "name=rootless" in security:
        return engine(
            "rootless", f"rootless Docker Engine {server} on {operating_system or 'Linux'}", host_os
        )
    return engine("linux", f"Docker Engine {server} on {operating_system or 'Linux'}", host_os)


_OS_NAMES = {"windows": "Windows", "macos": "macOS", "linux": "Linux"}


def _os_of(platform: str) -> str:
    if platform == "win32":
        return "windows"
    if platform == "darwin":
        return "macos"
    return "linux"


def _desktop_host(address: str, platform: str) -> str:
    """Which system a Docker Desktop runs on: its label's socket says, else this machine's platform."""
    if (
        address.startswith("npipe:") or address == "unix:///var/run/docker-cli.sock"
    ):  # the latter: in a WSL distro
        return "windows"
    if "/Library/Containers/com.docker.docker/" in address or address.startswith("unix:///Users/"):
        return "macos"
    if address.startswith("unix://"):
        return "linux"
    return _os_of(platform)


def _desktop_backend(kernel: str, host_os: str) -> str:
    """How Docker Desktop runs its Linux: WSL 2 or Hyper-V on Windows, the system's virtualization elsewhere."""
    if "microsoft-standard-wsl2" in kernel.lower() or "wsl2" in kernel.lower():
        return "WSL 2"
    if host_os == "windows":
        return "Hyper-V"
    if host_os == "macos":
        return "macOS virtualization"
    return "a VM"


def _is_remote(endpoint: str) -> bool:
    """Whether ``endpoint`` is an engine on another machine (tcp/ssh to anything but loopback)."""
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("tcp", "ssh", "http", "https"):
        return False
    return (parsed.hostname or "") not in _LOCAL_HOSTS


def detect(client) -> Engine:
    """Ask the engine behind ``client`` what it is (two quick API calls)."""
    import requests
    from docker.errors import DockerException

    from ops.docker_engine import endpoint
    from ops.errors import DockerError

    try:
        return classify(client.info(), client.version(), endpoint())
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerError(
            f"Docker stopped answering: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint="`ops doctor` says what is wrong with the engine",
        ) from None
