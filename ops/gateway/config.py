"""What the gateway needs besides its model table: its key, limits, routing, sharing, callers, meter."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ops.gateway.callers import Participants
from ops.metering import Meter, NullMeter
from ops.profiles.classroom import SharingSpec
from ops.profiles.schema import DEFAULT_PRIVATE_PATTERNS, RoutingSpec
from ops.secrets import Secret


@dataclass
class GatewayConfig:
    """What the gateway needs besides its model table."""

    stack: str
    key: Secret
    default_max_tokens: int = 300
    max_body_bytes: int = 4 * 1024 * 1024
    started: float = field(default_factory=time.time)
    upstream_timeout: float = 600.0
    routing: RoutingSpec | None = None
    #: Finds the service whose inference-only key is ``Authorization``'s value (``Bearer <key>``),
    #: or None. Those keys reach the OpenAI routes; the ``/ops/`` routes take :attr:`key` only.
    service_key: Callable[[bytes], str | None] | None = field(default=None, compare=False)
    #: The participants' keys and passwords (:class:`ops.host.keys.ParticipantKeys`); None: no participants.
    participants: Participants | None = field(default=None, compare=False)
    #: What counts as personal data when there is no ``routing`` (which then has its own).
    private_patterns: tuple[str, ...] = DEFAULT_PRIVATE_PATTERNS
    #: How each model is shared among callers (``gateway.sharing:``).
    sharing: SharingSpec = field(default_factory=SharingSpec)
    #: Tokens (prompt and answer) a participant may use in any hour; None: no quota.
    tokens_per_hour: int | None = None
    #: Where each finished request is reported (``ops.metering``).
    meter: Meter = field(default_factory=NullMeter, compare=False)
