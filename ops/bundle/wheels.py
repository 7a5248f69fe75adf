"""The wheels of ``ops`` and its pinned dependencies for this platform: a wheelhouse for a fresh machine.

Made at ``ops bundle create`` time, while the package index answers: ``pip wheel`` of the ``ops``
checkout this process runs from (its ``pyproject.toml`` pins every dependency), with the Python
that runs ``ops``, so the wheels fit this platform and this Python version. A machine of the same
kind then installs with ``pip install --no-index --find-links WHEELHOUSE ops-workshop``.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

from ops.errors import OpsError, UsageError

#: The name ``ops`` is installed by.
DISTRIBUTION = "ops-workshop"
PIP_TIMEOUT_S = 1800


def checkout() -> Path:
    """The source checkout ``ops`` runs from (the folder with its ``pyproject.toml``)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "ops" / "__init__.py").is_file():
        raise UsageError(
            f"ops runs from an installed wheel ({root}), not from a source checkout: no wheel of ops can be built",
            hint="run `ops bundle create` from a checkout's virtual environment, or add --no-wheels",
        )
    return root


def platform_tag() -> str:
    """Which machines the wheels fit: Python version and platform, e.g. ``cp311-linux-x86_64``."""
    return f"cp{sys.version_info.major}{sys.version_info.minor}-{sysconfig.get_platform()}"


def build(into: Path, say: Callable[[str], None]) -> list[Path]:
    """``pip wheel`` ops and its dependencies into ``into`` (an empty folder); returns the wheels."""
    root = checkout()
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(into), str(root)]
    say(f"wheels: {' '.join(command[2:])}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OpsError(
            f"pip wheel of ops did not finish: {exc}", hint="check that pip reaches its package index"
        ) from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit {done.returncode}"
        raise OpsError(
            f"pip could not gather the wheels of ops and its dependencies: {last}",
            hint="the package index must answer while the bundle is made (or add --no-wheels)",
        )
    wheels = sorted(into.glob("*.whl"))
    if not any(w.name.startswith(DISTRIBUTION.replace("-", "_") + "-") for w in wheels):
        raise OpsError(
            "pip wheel ended without a wheel of ops", hint="run it by hand to see why: " + " ".join(command)
        )
    return wheels


def install_command(wheelhouse: Path) -> str:
    """The command that installs ops from ``wheelhouse`` with no network."""
    return f"python -m pip install --no-index --find-links {wheelhouse} {DISTRIBUTION}"
