"""Pace CPU-bound work so that the event loop gets to run between slices of it.

A fan-out to a thousand devices, or a thousand actions at once, starts every
send in one pass of the event loop: each encrypts and frames its push before
its first wait, and nothing else in Home Assistant runs until all have. Work
that takes its turn from a Pacer first goes on at once while the current slice
lasts; after that it waits, in order, for a later pass of the loop, so a pass
holds about one slice of it.

Plain asyncio: no Home Assistant here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Final

SLICE: Final = 0.005
"""Seconds of paced work per pass of the event loop."""
_MAX_BATCH: Final = 1024


class Pacer:
    """Turns for CPU-bound work, a slice of the event loop's time at a time."""

    def __init__(self, slice_seconds: float = SLICE) -> None:
        """Pace in slices of slice_seconds."""
        self._slice = slice_seconds
        # When the slice of the current pass began; None until a turn is taken.
        self._started: float | None = None
        self._waiting: deque[asyncio.Future[None]] = deque()
        # How many waiting turns to wake for one pass; adapts to their cost.
        self._batch = 1

    async def async_turn(self) -> None:
        """Return at once while this pass's slice lasts; otherwise wait, in order."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            now = loop.time()
            if self._started is None:
                self._started = now
                # Runs once the loop has polled for I/O: the next pass.
                loop.call_soon(self._next_pass)
                return
            if now - self._started < self._slice:
                return
        waiter = loop.create_future()
        self._waiting.append(waiter)
        await waiter

    def _next_pass(self) -> None:
        """Start a new slice: wake as many waiting turns as fit in one."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._started is not None and self._waiting:
            # The last batch ran in the pass that just ended.
            if now - self._started < self._slice:
                self._batch = min(self._batch * 2, _MAX_BATCH)
            else:
                self._batch = max(self._batch // 2, 1)
        woken = 0
        while self._waiting and woken < self._batch:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a waiting task may have been cancelled
                waiter.set_result(None)
                woken += 1
        if woken:
            # The woken run in the next pass, and this after them.
            self._started = now
            loop.call_soon(self._next_pass)
        else:
            self._started = None


async def async_gather_paced[T, R](
    pacer: Pacer, start: Callable[[T], Coroutine[Any, Any, R]], items: Iterable[T]
) -> list[R]:
    """Run start(item) for each item concurrently, each in its turn; return the results in order.

    Each starts eagerly, so its work before its first wait falls in the turn
    it took. Cancelled while waiting for a turn, it cancels those started.
    """
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[R]] = []
    try:
        for item in items:
            await pacer.async_turn()
            tasks.append(asyncio.Task(start(item), loop=loop, eager_start=True))
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        raise
    return list(await asyncio.gather(*tasks))
