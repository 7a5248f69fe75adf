"""``ops.engines``: which engine answers, from recorded ``docker info`` / ``docker version`` answers.

The recordings are in ``tests/unit/data/docker_engines/`` (their README says where each came from).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.engines import classify

DATA = Path(__file__).parent / "data" / "docker_engines"


def recorded(name: str) -> tuple[dict, dict | None]:
    version = DATA / f"{name}.version.json"
    info = json.loads((DATA / f"{name}.info.json").read_text())
    return info, json.loads(version.read_text()) if version.exists() else None


# name, platform ops runs on, kind, host system, backend, arch, words in the name
CASES = [
    (
        "desktop-windows-wsl2",
        "win32",
        "desktop",
        "windows",
        "WSL 2",
        "x86_64",
        "Docker Desktop 4.42.1 on Windows (WSL 2)",
    ),
    (
        "desktop-windows-hyperv-2020",
        "win32",
        "desktop",
        "windows",
        "Hyper-V",
        "x86_64",
        "Docker Desktop on Windows (Hyper-V)",
    ),
    (
        "desktop-macos-arm64",
        "darwin",
        "desktop",
        "macos",
        "macOS virtualization",
        "aarch64",
        "Docker Desktop 4.47.0 on macOS",
    ),
    (
        "desktop-macos-arm64-2023",
        "darwin",
        "desktop",
        "macos",
        "macOS virtualization",
        "aarch64",
        "Docker Desktop on macOS",
    ),
    (
        "desktop-macos-intel",
        "darwin",
        "desktop",
        "macos",
        "macOS virtualization",
        "x86_64",
        "Docker Desktop 4.48.0 on macOS",
    ),
    (
        "desktop-macos-intel-2020",
        "darwin",
        "desktop",
        "macos",
        "macOS virtualization",
        "x86_64",
        "Docker Desktop on macOS",
    ),
    ("desktop-linux", "linux", "desktop", "linux", "a VM", "x86_64", "Docker Desktop on Linux"),
    (
        "linux-engine",
        "linux",
        "linux",
        "linux",
        "",
        "x86_64",
        "Docker Engine 20.10.24+dfsg1 on Debian GNU/Linux 12",
    ),
    ("linux-rootless", "linux", "rootless", "linux", "", "x86_64", "rootless Docker Engine 27.1.1"),
]


@pytest.mark.parametrize(("name", "platform", "kind", "host_os", "backend", "arch", "title"), CASES)
def test_recorded_engines_are_told_apart(name, platform, kind, host_os, backend, arch, title):
    info, version = recorded(name)
    engine = classify(info, version, "unix:///var/run/docker.sock", platform)
    assert (engine.kind, engine.host_os, engine.backend, engine.arch) == (kind, host_os, backend, arch)
    assert engine.name.startswith(title)
    assert engine.memory_bytes == int(info["MemTotal"]) and engine.cpus == int(info["NCPU"])


@pytest.mark.parametrize("name", [c[0] for c in CASES if c[2] == "desktop"])
def test_docker_desktop_is_never_started_by_ops_and_reaches_the_hosts_loopback(name):
    engine = classify(*recorded(name), "npipe:////./pipe/docker_engine")
    assert engine.in_vm and engine.forwards_host_loopback
    assert not engine.ops_may_start and not engine.bridge_on_host


def test_the_desktop_label_names_the_host_system_whatever_the_platform_ops_runs_on():
    """A Desktop engine of Windows asked from a WSL distro: its label still says Windows."""
    info, version = recorded("desktop-windows-wsl2")
    assert classify(info, version, "", "linux").host_os == "windows"
    info["Labels"] = ["com.docker.desktop.address=unix:///var/run/docker-cli.sock"]  # as seen inside WSL
    assert classify(info, version, "", "linux").host_os == "windows"


def test_a_native_linux_engine_is_the_only_one_ops_may_start_and_whose_bridge_is_the_hosts():
    engine = classify(*recorded("linux-engine"), "unix:///var/run/docker.sock", "linux")
    assert engine.ops_may_start and engine.bridge_on_host
    assert not engine.in_vm and not engine.forwards_host_loopback
    assert engine.root_dir == "/var/lib/docker"


def test_a_rootless_engine_neither_owns_the_hosts_bridge_nor_forwards_loopback():
    engine = classify(*recorded("linux-rootless"), "unix:///run/user/1000/docker.sock", "linux")
    assert not engine.bridge_on_host and not engine.forwards_host_loopback and not engine.ops_may_start
    assert engine.root_dir.endswith("/.local/share/docker")


@pytest.mark.parametrize(
    ("endpoint", "kind"),
    [
        ("tcp://10.1.2.3:2376", "remote"),
        ("ssh://ann@build-box", "remote"),
        ("tcp://127.0.0.1:2375", "linux"),  # a local engine over TCP is still this machine's
        ("tcp://localhost:2375", "linux"),
        ("unix:///var/run/docker.sock", "linux"),
    ],
)
def test_an_engine_on_another_machine_is_remote(endpoint, kind):
    assert classify(*recorded("linux-engine"), endpoint, "linux").kind == kind


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"Name": "colima", "OperatingSystem": "Ubuntu 24.04 LTS"}, "Colima"),
        ({"Name": "orbstack", "KernelVersion": "6.9.7-orbstack-00170-g7b4100e7f7a3"}, "OrbStack"),
        ({"OperatingSystem": "Rancher Desktop WSL Distribution"}, "Rancher Desktop"),
    ],
)
def test_other_vm_engines_are_named_and_treated_like_desktop(changes, name):
    info, version = recorded("linux-engine")
    engine = classify({**info, **changes}, version, "unix:///var/run/docker.sock", "darwin")
    assert engine.kind == "vm" and engine.name.startswith(name)
    assert engine.forwards_host_loopback and not engine.ops_may_start


def test_an_engine_that_says_little_is_a_linux_engine_with_unknown_figures():
    engine = classify({}, None, "", "linux")
    assert (engine.kind, engine.arch, engine.memory_bytes, engine.cpus) == ("linux", "unknown", 0, 0)


# --------------------------------------------------------------------------------------------- doctor: docker.engine


def doctor_on(name: str, profile: str | None = "workshop"):
    """A doctor context whose Docker client answers like the recorded engine ``name``."""
    from ops.doctor.context import DoctorContext
    from tests.unit.fakedocker import FakeDocker

    client = FakeDocker()
    client.info_data, version = recorded(name)
    client.version_data = version or {}
    ctx = DoctorContext(profile)
    ctx.once("docker", lambda: client)
    return ctx


def engine_check(ctx):
    from ops.doctor.engine import EngineCheck

    return EngineCheck().run(ctx)


def test_doctor_names_docker_desktop_its_backend_and_what_its_vm_has():
    outcome = engine_check(doctor_on("desktop-windows-wsl2"))
    assert outcome.status == "ok"
    assert outcome.detail == (
        "Docker Desktop 4.42.1 on Windows (WSL 2), engine 28.2.2, x86_64; its VM has 5.7 GiB and 4 CPUs"
    )


def test_doctor_warns_when_desktops_vm_has_too_little_memory_and_says_where_to_give_more():
    ctx = doctor_on("desktop-macos-arm64")  # 3.8 GiB
    outcome = engine_check(ctx)
    assert outcome.status == "warn"
    assert "the workshop wants at least 4 GiB, and one container here may use up to 4.0 GiB" in outcome.detail
    assert outcome.fix == "give the VM more memory: Docker Desktop's Settings > Resources > Memory"


def test_with_wsl_2_the_vms_memory_is_set_in_wslconfig():
    ctx = doctor_on("desktop-windows-wsl2")
    ctx.docker().info_data["MemTotal"] = 2 * 1024**3
    assert ".wslconfig" in engine_check(ctx).fix


def test_doctor_warns_about_a_rootless_engine_and_says_what_to_do():
    outcome = engine_check(doctor_on("linux-rootless"))
    assert outcome.status == "warn" and "network namespace" in outcome.detail
    assert "rootful engine" in outcome.fix


def test_doctor_says_a_native_linux_engine_is_fine_whatever_its_memory():
    ctx = doctor_on("linux-engine")
    ctx.docker().info_data["MemTotal"] = 2 * 1024**3  # not a VM: the host's memory check judges it
    assert engine_check(ctx).status == "ok"


def test_doctor_warns_that_a_remote_engine_cannot_reach_this_machine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.1.2.3:2376")
    outcome = engine_check(doctor_on("linux-engine"))
    assert outcome.status == "warn" and "another machine" in outcome.detail


def test_doctor_measures_a_vm_engines_disk_inside_it_not_on_this_machine(monkeypatch):
    """Docker Desktop's /var/lib/docker is in its VM: a local folder of that name must not be measured."""
    from ops.doctor import engine as checks

    ctx = doctor_on("desktop-macos-arm64")
    monkeypatch.setattr(checks, "_free_inside", lambda ctx: 37 * 1024**3)
    monkeypatch.setattr(
        checks.shutil, "disk_usage", lambda path: pytest.fail(f"measured {path} on this machine")
    )
    outcome = checks.DockerDiskCheck().run(ctx)
    assert outcome.status == "ok"
    assert outcome.detail.startswith("37.0 GiB free in Docker Desktop 4.47.0 on macOS")


# --------------------------------------------------------------------------------------------- doctor: the way to the gateway


def reach_on(name: str, addresses: tuple[str, ...], answer: str, monkeypatch):
    from ops.doctor import reach
    from ops.host.info import HostInfo
    from ops.host.process import HostStatus

    ctx = doctor_on(name)
    info = HostInfo(4242, 8000, addresses, "workshop", 0.0, "f")
    ctx.once("host", lambda: HostStatus("workshop", True, False, info, {}, Path("host.log")))
    ctx.once("network-gateway", lambda: "172.30.0.1")
    asked = []

    def probe(ctx, network, address, port):
        asked.append(address)
        return answer

    monkeypatch.setattr(reach, "_probe_from_container", probe)
    return reach.HostGatewayCheck().run(ctx), asked


def test_on_docker_desktop_the_probe_keeps_desktops_own_host_name(monkeypatch):
    outcome, asked = reach_on("desktop-windows-wsl2", ("127.0.0.1",), "HTTP/1.1 200 OK", monkeypatch)
    assert outcome.status == "ok" and asked == [None]  # no mapping to the VM's bridge
    assert "host.docker.internal:8000 (the name Docker Desktop 4.42.1 on Windows (WSL 2)" in outcome.detail


def test_on_docker_desktop_a_gateway_off_loopback_is_named_as_the_cause(monkeypatch):
    answer = "connection refused (ECONNREFUSED)"
    outcome, _ = reach_on("desktop-macos-arm64", ("192.168.1.20",), answer, monkeypatch)
    assert outcome.status == "fail" and "not on 127.0.0.1 where the engine forwards" in outcome.detail
    assert outcome.fix.startswith("add 127.0.0.1 to `gateway.bind`")


def test_on_a_linux_engine_the_probe_maps_the_name_to_the_networks_gateway(monkeypatch):
    outcome, asked = reach_on("linux-engine", ("127.0.0.1", "172.30.0.1"), "HTTP/1.1 200 OK", monkeypatch)
    assert outcome.status == "ok" and asked == ["172.30.0.1"]
