"""Token quotas: what each participant may use (prompt and answer tokens) in any sliding hour.

The windows live in memory and are seeded at start from what the meter recorded in the last hour,
so a restarted host does not hand everyone a fresh hour. A request is refused (429 with
``Retry-After``: the seconds until enough of the window has expired) when its participant has
already used the quota; the request that crosses it is answered, since its size is known only once
it ends (at most ``per_caller`` requests of one participant run at once, which bounds the overshoot).
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable, Mapping

from ops.gateway.errors import too_many

#: The quota's window, seconds.
HOUR = 3600.0


class Quotas:
    """Sliding-hour token windows per caller id; only participants are limited."""

    def __init__(
        self,
        tokens_per_hour: int | None,
        seed: Mapping[str, list[tuple[float, int]]] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.limit = tokens_per_hour
        self.clock = clock
        self.windows: dict[str, deque[tuple[float, int]]] = {}
        self.used: dict[str, int] = {}
        for caller, entries in (seed or {}).items():
            for at, tokens in sorted(entries):
                self.add(caller, at, tokens)

    def add(self, caller: str, at: float, tokens: int) -> None:
        """``caller`` used ``tokens`` in a request that arrived at ``at`` (Unix time)."""
        if self.limit is None or tokens <= 0 or not caller.startswith("participant:"):
            return
        window = self.windows.setdefault(caller, deque())
        # In arrival order, though requests end (and are added) in another: a long answer that arrived
        # first must leave the window first, and Retry-After counts from the oldest.
        if window and window[-1][0] > at:
            bisect.insort(window, (at, tokens))
        else:
            window.append((at, tokens))
        self.used[caller] = self.used.get(caller, 0) + tokens

    def _expire(self, caller: str, now: float) -> int:
        window = self.windows.get(caller)
        if not window:
            return 0
        while window and window[0][0] <= now - HOUR:
            self.used[caller] -= window.popleft()[1]
        return self.used[caller]

    def check(self, caller: str) -> None:
        """Raise 429 ``quota_exceeded`` when ``caller`` has used its hour's tokens."""
        if self.limit is None or caller not in self.windows:
            return
        now = self.clock()
        used = self._expire(caller, now)
        if used < self.limit:
            return
        # The first moment enough of the window has expired for ``used`` to drop below the limit.
        left, wait = used, 0.0
        for at, tokens in self.windows[caller]:
            left -= tokens
            wait = at + HOUR - now
            if left < self.limit:
                break
        name = caller.removeprefix("participant:")
        raise too_many(
            f"participant {name!r} used {used} tokens in the last hour, the quota is {self.limit} tokens "
            f"an hour (the profile's participants.tokens_per_hour); try again in {max(1, int(wait + 0.999))} s",
            "quota_exceeded",
            wait,
        )

    def usage(self, caller: str) -> int:
        """Tokens ``caller`` used in the last hour (as far as quotas count)."""
        return self._expire(caller, self.clock())
