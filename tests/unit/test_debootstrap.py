"""debootstrap: which mirror it uses, and how its absence or failure is reported.

Mirror precedence: OPS_DEBIAN_MIRROR, else the host's apt mirror, else deb.debian.org.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from ops.errors import DockerError
from ops.images.debootstrap import DEFAULT_MIRROR, MIRROR_ENV, bootstrap_rootfs, debian_mirror


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)


def write(root, name, text):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_deb822_mirror_for_the_suite_wins_over_security_and_disabled(tmp_path):
    write(
        tmp_path,
        "sources.list.d/debian.sources",
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n",
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_one_line_sources_with_options(tmp_path):
    write(
        tmp_path,
        "sources.list",
        "# deb http://commented.example/debian bookworm main\n"
        "deb https://packages.example/apt cloud-sdk-bookworm main\n"
        "deb [signed-by=/k.gpg arch=amd64] http://cache.example:3142/debian bookworm main\n",
    )
    assert debian_mirror(tmp_path) == "http://cache.example:3142/debian"


def test_default_when_host_has_no_bookworm_mirror(tmp_path):
    write(tmp_path, "sources.list", "deb http://archive.ubuntu.com/ubuntu noble main\n")
    assert debian_mirror(tmp_path) == DEFAULT_MIRROR


def test_environment_override_wins(tmp_path, monkeypatch):
    write(tmp_path, "sources.list", "deb http://cache.example/debian bookworm main\n")
    monkeypatch.setenv(MIRROR_ENV, "http://override.example/debian/")
    assert debian_mirror(tmp_path) == "http://override.example/debian"


def test_missing_debootstrap_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with (
        pytest.raises(DockerError, match="debootstrap is not installed") as caught,
        bootstrap_rootfs(DEFAULT_MIRROR),
    ):
        pass
    assert "apt-get install debootstrap" in caught.value.hint


def test_failing_debootstrap_reports_its_last_lines_and_cleans_up(monkeypatch, tmp_path):
    fake = tmp_path / "bin" / "debootstrap"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho 'I: Retrieving InRelease'\necho 'E: Failed getting release file' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    workdirs = tmp_path / "tmp"
    workdirs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(workdirs))
    lines: list[str] = []
    with (
        pytest.raises(
            DockerError, match=r"exit 1\): I: Retrieving InRelease \| E: Failed getting release file"
        ),
        bootstrap_rootfs("http://mirror.example/debian", lines.append),
    ):
        pass
    assert lines[0].startswith("debootstrap bookworm from http://mirror.example/debian")
    assert list(workdirs.iterdir()) == []


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_off_linux_it_refuses_and_says_how_to_get_the_image(monkeypatch, platform):
    monkeypatch.setattr("sys.platform", platform)
    # Refused before looking for debootstrap, running anything or asking for the user id.
    monkeypatch.setattr("shutil.which", lambda _: pytest.fail("looked for debootstrap"))
    with pytest.raises(DockerError, match="works on Linux only") as caught, bootstrap_rootfs(DEFAULT_MIRROR):
        pass
    assert f"this is {platform}" in caught.value.message
    assert "docker pull debian:bookworm-slim" in caught.value.hint
