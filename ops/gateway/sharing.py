"""Sharing each model among its callers: slots, a per-caller limit, a bounded queue served fairly.

Each model (a concrete alias; a virtual model's request takes a slot of the model it is tried on)
runs at most ``slots`` requests at once upstream, and at most ``per_caller`` of one caller (the stack's
own key, the instructor's, excepted). The
rest wait, at most ``queue`` of them over all callers; one more is refused (429 with ``Retry-After``).
When a slot frees, policy ``fair`` serves the waiting caller who has the fewest requests running,
and among equals the one served longest ago (round robin), so one caller's burst of requests does
not make everyone else wait behind it; ``fifo`` serves in arrival order (for comparison). A
request whose client leaves while it waits leaves the queue.

A slot is held until the answer has been sent (a stream's last chunk) or the client left: the
caller of :meth:`Sharing.acquire` releases it; :meth:`Slot.release` may be called more than once.
Everything runs on the event loop's thread; nothing here locks.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ops.metering import Meter, NullMeter
from ops.profiles.classroom import SharingSpec

#: Requests a model runs at once when neither the profile nor its server says.
DEFAULT_SLOTS = 8
#: The stack key's caller (:data:`ops.gateway.callers.ADMIN`), whom ``per_caller`` does not limit.
ADMIN = "admin"


class QueueFull(Exception):
    """No slot and no place in the queue; ``retry_after`` estimates when one may be free."""

    def __init__(self, model: str, waiting: int, retry_after: float):
        super().__init__(f"model {model!r} is busy: {waiting} requests are already waiting")
        self.model, self.waiting, self.retry_after = model, waiting, retry_after


@dataclass(eq=False)
class _Waiter:
    caller: str
    future: asyncio.Future[None]


@dataclass(eq=False)
class Slot:
    """A place to run one request of ``caller`` on a model; :meth:`release` gives it back."""

    pool: Pool
    caller: str
    #: Seconds it waited in the queue.
    queued: float = 0.0
    taken: float = field(default_factory=time.monotonic)
    released: bool = False

    def release(self) -> None:
        """Give the place back (once; later calls do nothing) and serve whoever waits next."""
        if not self.released:
            self.released = True
            self.pool.release(self)


class Pool:
    """One model's slots, the requests running in them by caller, and the queue."""

    def __init__(self, model: str, spec: SharingSpec, slots: int, meter: Meter):
        self.model, self.spec, self.slots, self.meter = model, spec, slots, meter
        self.running: Counter[str] = Counter()
        self.total = 0
        self.waiting: deque[_Waiter] = deque()
        self.last_served: dict[str, int] = {}
        self._turns = itertools.count()
        #: Seconds a slot is held, averaged (for Retry-After); a first guess until requests end.
        self.hold_s = 2.0

    async def acquire(self, caller: str) -> Slot:
        """A slot for ``caller``: at once if one is free to it, else after waiting; raises :class:`QueueFull`."""
        if self.total < self.slots and self.running[caller] < self.limit(caller):
            # Nobody eligible waits (a free slot would have gone to them): no one is overtaken.
            return self._take(caller, 0.0)
        if len(self.waiting) >= self.spec.queue:
            raise QueueFull(self.model, len(self.waiting), self.retry_after())
        waiter = _Waiter(caller, asyncio.get_running_loop().create_future())
        self.waiting.append(waiter)
        self.meter.queue_depth(self.model, len(self.waiting))
        started = time.monotonic()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                # Granted as the client left: the slot was counted as taken; give it back.
                self.release(Slot(self, caller))
            else:
                self.waiting.remove(waiter)
                self.meter.queue_depth(self.model, len(self.waiting))
            raise
        return Slot(self, caller, queued=time.monotonic() - started)

    def limit(self, caller: str) -> int:
        """Requests ``caller`` may run at once: ``per_caller``, except the stack's own key (``admin``:
        the instructor's CLI, ``ops bench``), which only the slots bound. It still waits its turn."""
        return self.slots if caller == ADMIN else self.spec.per_caller

    def _take(self, caller: str, queued: float) -> Slot:
        self._count(caller)
        return Slot(self, caller, queued=queued)

    def _count(self, caller: str) -> None:
        self.running[caller] += 1
        self.total += 1
        self.last_served[caller] = next(self._turns)

    def release(self, slot: Slot) -> None:
        """``slot``'s request ended: count it out, serve the next waiting one(s)."""
        self.running[slot.caller] -= 1
        if self.running[slot.caller] <= 0:
            del self.running[slot.caller]
        self.total -= 1
        self.hold_s += (time.monotonic() - slot.taken - self.hold_s) * 0.2
        self._serve()

    def _serve(self) -> None:
        """Give free slots to waiting requests, in the policy's order."""
        served = False
        while self.total < self.slots and self.waiting:
            waiter = self._next()
            if waiter is None:
                break
            self.waiting.remove(waiter)
            self._count(waiter.caller)
            waiter.future.set_result(None)
            served = True
        if served:
            self.meter.queue_depth(self.model, len(self.waiting))

    def _next(self) -> _Waiter | None:
        """The waiting request to serve now, or None when every waiting caller has ``per_caller`` running."""
        if self.spec.policy == "fifo":
            return next((w for w in self.waiting if self.running[w.caller] < self.limit(w.caller)), None)
        best: _Waiter | None = None
        best_key: tuple[int, int] = (0, 0)
        for waiter in self.waiting:  # arrival order: a caller's first waiting request is theirs to go
            running = self.running[waiter.caller]
            if running >= self.limit(waiter.caller):
                continue
            key = (running, self.last_served.get(waiter.caller, -1))
            if best is None or key < best_key:
                best, best_key = waiter, key
        return best

    def retry_after(self) -> float:
        """Seconds until a place is likely free: the queue's length in turns of the average hold."""
        turns = (len(self.waiting) + 1) / max(1, self.slots)
        return min(300.0, max(1.0, self.hold_s * turns))


class Sharing:
    """Every model's :class:`Pool`, made on first use with the model's slot count."""

    def __init__(self, spec: SharingSpec, slots_of: Callable[[str], int | None], meter: Meter | None = None):
        self.spec = spec
        self.slots_of = slots_of
        self.meter = meter or NullMeter()
        self.pools: dict[str, Pool] = {}

    def slots(self, model: str) -> int:
        """Requests ``model`` runs at once: the profile's ``slots``, else its server's, else the default."""
        if self.spec.slots is not None:
            return self.spec.slots
        return self.slots_of(model) or DEFAULT_SLOTS

    def pool(self, model: str) -> Pool:
        """``model``'s pool, made with its slot count on first use."""
        pool = self.pools.get(model)
        if pool is None:
            pool = self.pools[model] = Pool(model, self.spec, self.slots(model), self.meter)
        return pool

    async def acquire(self, model: str, caller: str) -> Slot:
        """A slot of ``model`` for ``caller`` (see :meth:`Pool.acquire`)."""
        return await self.pool(model).acquire(caller)
