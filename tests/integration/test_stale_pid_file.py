"""A pid file whose pid now belongs to another process is stale: nothing ever signals that process.

The system reuses pids. A host that crashed (or a machine that rebooted) leaves its pid file, and
the pid in it may later be another program's, even one whose command line says "ops host". Only a
process with the start time and the exact argv the host recorded is the host.
"""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from ops.cli import main
from ops.host import process
from ops.host.info import HostInfo

from .hosts import RunningHost


@pytest.fixture
def host(tmp_path, ops_home):
    running = RunningHost(ops_home, tmp_path, "stale")
    yield running
    running.stop()


@pytest.fixture
def bystanders():
    """Two unrelated processes: ``sleep 60``, and one whose argv says ``ops host run`` but is not ours."""
    started = [
        subprocess.Popen(["sleep", "60"]),
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)", "ops", "host", "run", "--config", "x"]
        ),
    ]
    yield started
    for proc in started:
        proc.kill()
        proc.wait(10)


def _record(host: RunningHost, pid: int, **changes) -> None:
    """A pid file naming ``pid``, as a host that has since died would have left it."""
    info = HostInfo(
        pid,
        host.port,
        ("127.0.0.1",),
        str(host.path),
        time.time() - 3600,
        "",
        create_time=time.time() - 3600,
        argv=(sys.executable, "-m", "ops", "host", "run", "--config", "/gone/host.json"),
    )
    fields = {**info.__dict__, **changes}
    HostInfo(**fields).write(host.state.pid_file)


@pytest.mark.parametrize("which", ["sleep", "ops-host-lookalike"])
@pytest.mark.parametrize("record", ["current", "legacy", "same-start-other-argv"])
def test_down_and_status_never_take_another_process_for_the_host(host, bystanders, capsys, which, record):
    victim = bystanders[0 if which == "sleep" else 1]
    proc = psutil.Process(victim.pid)
    if record == "legacy":  # written by an ops that recorded neither start time nor argv
        _record(host, victim.pid, create_time=0.0, argv=())
    elif record == "same-start-other-argv":
        _record(host, victim.pid, create_time=proc.create_time())
    else:
        _record(host, victim.pid)

    status = process.status(host.state)
    assert status.stale and not status.running
    assert main(["host", "status", str(host.path)]) == 0
    assert "stale pid file" in capsys.readouterr().out

    assert main(["down", str(host.path)]) == 0
    assert "was not running" in capsys.readouterr().out
    time.sleep(0.2)
    assert victim.poll() is None and proc.is_running(), "ops down signalled a process that is not the host"
    assert not host.state.pid_file.exists(), "the stale pid file is removed"


def test_up_over_a_stale_pid_file_starts_a_host_and_leaves_the_other_process(host, bystanders):
    victim = bystanders[1]
    _record(host, victim.pid)
    info, reused = host.start()
    assert not reused and info.pid != victim.pid
    assert victim.poll() is None
    recorded = HostInfo.read(host.state.pid_file)
    me = psutil.Process(info.pid)
    assert recorded.create_time == pytest.approx(me.create_time(), abs=0.01)
    assert recorded.argv == tuple(me.cmdline())
    assert process.status(host.state).running
    assert host.stop() and not psutil.pid_exists(info.pid)
    assert victim.poll() is None
