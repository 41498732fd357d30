"""Sharing the event loop: a burst of sends does its work a few milliseconds per turn.

Starting a push costs a fraction of a millisecond (the request is built, signed
and written), so a fan-out to a thousand devices, or a thousand calls at once,
would hold the event loop for a large part of a second if done in one go.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
import time
from typing import Final

# The loop time all sends together may take in one turn of the event loop.
TURN_BUDGET: Final = 0.004


@dataclass(slots=True)
class _Batch[T]:
    work: Iterator[Callable[[], T]]
    done: asyncio.Future[list[T]]
    results: list[T] = field(default_factory=list)


class Turns:
    """A budget of loop time per turn of the event loop, shared by every caller.

    Work that fits in the current turn's budget runs at once, so a lone push
    waits for nothing. The rest waits in order and is done a budget per later
    turn, so other work (answers from push services, other integrations) runs
    in between.
    """

    def __init__(self, budget: float | None = None) -> None:
        """Share budget seconds (default TURN_BUDGET) of each turn of the running loop."""
        self._budget = TURN_BUDGET if budget is None else budget
        self._turn_start: float | None = None
        self._queue: deque[_Batch[object]] = deque()
        self._worker: asyncio.Task[None] | None = None

    async def run[T](self, work: Iterable[Callable[[], T]]) -> list[T]:
        """Call each piece of work in order; return their results in that order.

        The work is taken from the iterable only when its turn comes, so
        building it is paced too. A caller that is cancelled while it waits
        does not stop its work: what it started is still done.
        """
        loop = asyncio.get_running_loop()
        batch: _Batch[T] = _Batch(iter(work), loop.create_future())
        if not self._queue and self._has_time() and self._advance(batch):
            return batch.results
        self._queue.append(batch)  # type: ignore[arg-type]
        if self._worker is None:
            self._worker = loop.create_task(self._drain())
        return await batch.done

    async def call[T](self, work: Callable[[], T]) -> T:
        """Call one piece of work in its turn; return its result."""
        return (await self.run((work,)))[0]

    async def async_flush(self) -> None:
        """Wait until every piece of work given so far is done."""
        while self._worker is not None:
            await asyncio.shield(self._worker)

    def _has_time(self) -> bool:
        now = time.monotonic()
        if self._turn_start is None:
            self._turn_start = now
            # Runs after everything already due in this turn: the next turn is new.
            asyncio.get_running_loop().call_soon(self._new_turn)
            return True
        return now - self._turn_start < self._budget

    def _new_turn(self) -> None:
        self._turn_start = None

    def _advance[T](self, batch: _Batch[T]) -> bool:
        """Do the batch's work until this turn's time is up; return whether it is all done.

        Called only while the turn has time, so each turn does at least one piece.
        """
        while (piece := next(batch.work, None)) is not None:
            batch.results.append(piece())
            if not self._has_time():
                return False
        return True

    async def _drain(self) -> None:
        try:
            while self._queue:
                if not self._has_time():
                    await asyncio.sleep(0)
                    continue
                batch = self._queue[0]
                try:
                    finished = self._advance(batch)
                except Exception as err:  # noqa: BLE001 (the caller gets it, not the others)
                    self._queue.popleft()
                    if not batch.done.done():
                        batch.done.set_exception(err)
                    continue
                if finished:
                    self._queue.popleft()
                    if not batch.done.done():
                        batch.done.set_result(batch.results)
        finally:
            self._worker = None
