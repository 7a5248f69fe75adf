"""A service's limits in the profile (``resources:``) and the capabilities it adds back (``cap_add:``).

Every container runs with all Linux capabilities dropped and ``no-new-privileges``; a profile
gives back only what its image needs. Memory and process limits have defaults that fit every
built-in kind, so one runaway service cannot take the machine (or the model host) down with it.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

_SIZE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]?)i?b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
#: Docker refuses a memory limit under 6 MiB.
MIN_MEMORY = 6 * 1024**2
DEFAULT_MEMORY = "4g"
DEFAULT_PIDS = 1024
_CAPABILITY = re.compile(r"^[A-Z][A-Z_]*$")


def size_bytes(value: str | int) -> int:
    """``4g``, ``512m``, ``1.5G``, ``2GiB`` or a number of bytes, as bytes."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a size: write e.g. 4g, 512m or a number of bytes")
    return int(float(match["number"]) * _UNITS[match["unit"].lower()])


class ResourcesSpec(BaseModel):
    """What one container may use: memory (hard limit, no extra swap) and processes (threads count)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    memory: str | int = Field(
        default=DEFAULT_MEMORY, description="memory limit, e.g. 4g or 512m; the container is killed above it"
    )
    pids: int = Field(
        default=DEFAULT_PIDS, ge=32, description="most processes and threads the container may run at once"
    )

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | int) -> str | int:
        if size_bytes(value) < MIN_MEMORY:
            raise ValueError(f"{value!r} is below Docker's minimum of 6m")
        return value

    @property
    def memory_bytes(self) -> int:
        """The memory limit in bytes."""
        return size_bytes(self.memory)


def capabilities(value: tuple[str, ...]) -> tuple[str, ...]:
    """``cap_add`` names as Docker wants them: upper case, without ``CAP_``; each must look like one."""
    names = []
    for item in value:
        name = item.strip().upper().removeprefix("CAP_")
        if name == "ALL" or not _CAPABILITY.match(name):
            raise ValueError(f"{item!r} is not a capability to add back: name one, e.g. NET_BIND_SERVICE")
        names.append(name)
    return tuple(sorted(set(names)))


#: The type of ``cap_add:``: names checked and normalised by :func:`capabilities`.
Capabilities = Annotated[tuple[str, ...], AfterValidator(capabilities)]
