"""The model host's life: start, reuse, clean stop, stale detection, busy ports, the CLI around it."""

from __future__ import annotations

import os
import signal
import socket

import httpx
import psutil
import pytest

from ops.cli import main
from ops.host import process
from ops.network import ensure_network, network_name

from .hosts import RunningHost, free_port


@pytest.fixture
def host(tmp_path, ops_home):
    running = RunningHost(ops_home, tmp_path, "life")
    yield running
    running.stop()


def test_start_then_second_start_reuses(host):
    info, reused = host.start()
    assert not reused and psutil.pid_exists(info.pid)
    again, reused = host.start()
    assert reused and again.pid == info.pid
    assert httpx.get(f"{info.url}/health").json()["status"] == "ok"
    # The host's log and its configuration are its owner's only.
    assert host.state.log_file.stat().st_mode & 0o777 == 0o600
    assert host.state.host_config.stat().st_mode & 0o777 == 0o600


def test_sigterm_stops_cleanly(host):
    info, _ = host.start()
    proc = psutil.Process(info.pid)
    os.kill(info.pid, signal.SIGTERM)
    proc.wait(30)
    assert not host.state.pid_file.exists(), "a clean stop removes the pid file"
    assert "host stopped" in host.state.log_file.read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{info.url}/health")


def test_killed_host_is_stale_and_restarted(host):
    info, _ = host.start()
    victim = psutil.Process(info.pid)
    victim.kill()
    victim.wait(10)
    status = process.status(host.state)
    assert status.stale and not status.running
    new, reused = host.start()
    assert not reused and new.pid != info.pid
    assert httpx.get(f"{new.url}/health").json()["status"] == "ok"


def test_down_stops_and_says_so(host, capsys):
    host.start()
    assert main(["down", str(host.path)]) == 0
    assert "model host of life stopped" in capsys.readouterr().out
    assert not process.status(host.state).running
    assert main(["down", str(host.path)]) == 0
    assert "was not running" in capsys.readouterr().out


def test_busy_port_is_a_clear_error_naming_the_holder(host, capsys):
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", host.port))
        blocker.listen()
        code = main(["up", str(host.path)])
        err = capsys.readouterr().err
    assert code == 6
    first, hint = err.strip().splitlines()[-2:]
    assert f"port {host.port} on 127.0.0.1 is already in use by" in first and f"(pid {os.getpid()})" in first
    assert "gateway.port" in hint
    assert not host.state.pid_file.exists(), "nothing started"


def test_ops_up_cli_starts_host_and_names_skipped_catalog_model(tmp_path, ops_home, capsys, monkeypatch):
    monkeypatch.setenv("OPS_CATALOG_TIMEOUT", "1")
    port = free_port()
    path = tmp_path / "cli.yaml"
    path.write_text(
        "models:\n"
        "  phi-4-mini: {catalog: phi-4-mini, optional: true}\n"
        "  tiny: {path: bundled:tiny-fp32}\n"
        f"gateway: {{port: {port}, bind: [127.0.0.1]}}\n"
    )
    try:
        code = main(["up", str(path)])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        if "model phi-4-mini: skipped" in captured.err:  # offline, as on CI machines
            assert "the Foundry catalog" in captured.err
        assert (
            "model host started" in captured.err and f"gateway   http://127.0.0.1:{port}/v1" in captured.out
        )
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert health["models"]["tiny"] == "ready"
        assert main(["up", str(path)]) == 0
        again = capsys.readouterr()
        assert "model host already running" in again.err and "nothing changed" in again.out
        assert main(["endpoint", str(path)]) == 0
        out = capsys.readouterr().out
        assert f"http://127.0.0.1:{port}/v1" in out and "secrets.json" in out
        key = (ops_home / "stacks" / "cli" / "secrets.json").read_text()
        assert "gateway-key" in key
    finally:
        main(["down", str(path)])


def test_endpoint_shows_key_only_when_asked(host, capsys):
    host.start()
    main(["endpoint", str(host.path)])
    assert host.key not in capsys.readouterr().out
    main(["endpoint", "--show-key", str(host.path)])
    assert host.key in capsys.readouterr().out


def test_host_binds_the_stack_network_gateway(host, docker_client):
    gateway = ensure_network(docker_client, "life")
    try:
        info, _ = host.start(["127.0.0.1", gateway])
        assert set(info.addresses) == {"127.0.0.1", gateway}
        assert httpx.get(f"http://{gateway}:{host.port}/health").json()["status"] == "ok"
        with pytest.raises(httpx.ConnectError):  # not on every interface
            httpx.get(f"http://{_other_address(gateway)}:{host.port}/health", timeout=2)
    finally:
        host.stop()
        docker_client.networks.get(network_name("life")).remove()


def test_model_host_status_json(host, capsys):
    host.start()
    assert main(["host", "status", "--json", str(host.path)]) == 0
    import json

    (status,) = json.loads(capsys.readouterr().out)
    assert status["running"] is True and status["health"]["models"] == {"tiny": "ready", "tiny-int4": "ready"}
    assert host.key not in json.dumps(status)


def _other_address(exclude: str) -> str:
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and addr.address not in (exclude, "127.0.0.1"):
                return addr.address
    pytest.fail("this machine has no third IPv4 address to probe")


def test_down_works_after_the_model_folder_is_gone(tmp_path, ops_home, capsys):
    import shutil

    from ops import paths

    folder = tmp_path / "model"
    shutil.copytree(paths.bundled_model("tiny-int4"), folder)
    path = tmp_path / "gone.yaml"
    path.write_text(
        f"models: {{m: {{path: {folder}}}}}\ngateway: {{port: {free_port()}, bind: [127.0.0.1]}}\n"
    )
    assert main(["up", str(path)]) == 0
    shutil.rmtree(folder)
    assert main(["up", str(path)]) == 2  # the profile is invalid now...
    capsys.readouterr()
    assert main(["down", str(path)]) == 0  # ...but the running stack must still come down
    assert "model host of gone stopped" in capsys.readouterr().out


def test_a_changed_profile_replaces_the_running_host(tmp_path, ops_home, capsys):
    port = free_port()
    path = tmp_path / "changing.yaml"
    path.write_text(
        f"models: {{tiny: {{path: bundled:tiny-fp32}}}}\ngateway: {{port: {port}, bind: [127.0.0.1]}}\n"
    )
    try:
        assert main(["up", str(path)]) == 0
        first = httpx.get(f"http://127.0.0.1:{port}/health").json()
        path.write_text(
            "models: {tiny: {path: bundled:tiny-fp32}, tiny-int4: {path: bundled:tiny-int4}}\n"
            f"gateway: {{port: {port}, bind: [127.0.0.1]}}\n"
        )
        capsys.readouterr()
        assert main(["up", str(path)]) == 0
        err = capsys.readouterr().err
        assert "model host: restarting, the profile's models or gateway settings changed" in err
        assert "model host started" in err
        after = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert first["models"] == {"tiny": "ready"}
        assert after["models"] == {"tiny": "ready", "tiny-int4": "ready"}
        assert main(["up", str(path)]) == 0
        assert "model host already running" in capsys.readouterr().err
    finally:
        main(["down", str(path)])
