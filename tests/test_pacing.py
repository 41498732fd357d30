"""Pacing: CPU-bound work in turns, so the event loop runs between slices of it."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.direct_push.pacing import Pacer, async_gather_paced


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Plain asyncio: skip conftest's hass fixture."""


class Passes:
    """Counts the event loop's passes: a callback that reschedules itself."""

    def __init__(self) -> None:
        self.count = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.count += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


def _exhaust(pacer: Pacer) -> None:
    """Use up the current slice, as long work would."""
    pacer._started = asyncio.get_running_loop().time() - 3600


async def test_turns_within_the_slice_go_on_at_once() -> None:
    pacer = Pacer(slice_seconds=3600)
    passes = Passes()
    for _ in range(100):
        await pacer.async_turn()
    assert passes.count == 0
    passes.stop()


async def test_work_past_the_slice_waits_for_a_later_pass() -> None:
    pacer = Pacer()
    passes = Passes()
    await pacer.async_turn()
    _exhaust(pacer)
    assert passes.count == 0
    await pacer.async_turn()
    # Other callbacks, and a poll for I/O, ran meanwhile.
    assert passes.count >= 1
    passes.stop()


async def test_waiting_turns_go_in_order() -> None:
    pacer = Pacer(slice_seconds=0)
    order: list[int] = []

    async def work(index: int) -> None:
        await pacer.async_turn()
        order.append(index)

    await pacer.async_turn()
    _exhaust(pacer)
    await asyncio.gather(*(work(index) for index in range(20)))
    assert order == list(range(20))


async def test_a_cancelled_turn_holds_up_no_other() -> None:
    pacer = Pacer(slice_seconds=0)
    await pacer.async_turn()
    _exhaust(pacer)
    # Both wait: they take their turns now, before the next pass.
    loop = asyncio.get_running_loop()
    first = asyncio.Task(pacer.async_turn(), loop=loop, eager_start=True)
    second = asyncio.Task(pacer.async_turn(), loop=loop, eager_start=True)
    assert not first.done()
    first.cancel()
    await second
    assert first.cancelled()
    # Nobody waits now: the next pass starts a fresh slice.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert pacer._started is None


async def test_cheap_turns_are_woken_in_growing_batches() -> None:
    """When a pass's turns prove cheap, more are woken per pass."""
    pacer = Pacer(slice_seconds=3600)
    await pacer.async_turn()
    _exhaust(pacer)
    passes = Passes()
    await asyncio.gather(*(pacer.async_turn() for _ in range(1000)))
    passes.stop()
    # One per pass would take 1000 passes; doubling takes about log2(1000).
    assert passes.count < 30


async def test_costly_turns_are_woken_one_per_pass() -> None:
    pacer = Pacer(slice_seconds=0)
    await pacer.async_turn()
    _exhaust(pacer)
    passes = Passes()
    await asyncio.gather(*(pacer.async_turn() for _ in range(20)))
    passes.stop()
    assert passes.count >= 20


async def test_gather_paced_keeps_order_and_starts_each_in_turn() -> None:
    pacer = Pacer(slice_seconds=0)
    started: list[int] = []

    async def work(index: int) -> int:
        started.append(index)
        await asyncio.sleep(0.001 * (5 - index % 5))
        return index * 10

    passes = Passes()
    results = await async_gather_paced(pacer, work, range(10))
    passes.stop()
    assert results == [index * 10 for index in range(10)]
    assert started == list(range(10))
    # With no slice to speak of, each one's turn came in a pass of its own.
    assert passes.count >= 9


async def test_gather_paced_starts_each_eagerly() -> None:
    """A coroutine's first steps run in the turn it took, not in a later pass."""
    pacer = Pacer(slice_seconds=3600)
    started: list[int] = []

    async def work(index: int) -> int:
        started.append(index)
        await asyncio.sleep(0)
        return index

    gathering = asyncio.ensure_future(async_gather_paced(pacer, work, range(3)))
    await asyncio.sleep(0)
    assert started == [0, 1, 2]
    assert await gathering == [0, 1, 2]


async def test_gather_paced_cancelled_cancels_what_it_started() -> None:
    """As asyncio.gather: cancelled, it cancels its work; what had no turn never starts."""
    pacer = Pacer(slice_seconds=0)
    started: list[int] = []
    cancelled: list[int] = []
    three = asyncio.Event()

    async def work(index: int) -> None:
        started.append(index)
        if len(started) == 3:
            three.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(index)
            raise

    gathering = asyncio.ensure_future(async_gather_paced(pacer, work, range(10)))
    await three.wait()
    gathering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gathering
    await asyncio.sleep(0)
    assert 3 <= len(started) < 10
    assert cancelled == started


async def test_gather_paced_raises_the_first_error() -> None:
    pacer = Pacer()

    async def work(index: int) -> int:
        if index == 1:
            raise ValueError(index)
        return index

    with pytest.raises(ValueError, match="1"):
        await async_gather_paced(pacer, work, range(3))
