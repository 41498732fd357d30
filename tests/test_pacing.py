"""Turns: sends share the event loop, a budget per turn, in order, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from custom_components.direct_push.pacing import Turns


class LoopTurns:
    """Counts the turns of the event loop, to tell which turn a piece of work ran in."""

    def __init__(self) -> None:
        self.turn = 0
        self._handle: asyncio.Handle | None = None

    def __enter__(self) -> LoopTurns:
        self._tick()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._handle is not None
        self._handle.cancel()

    def _tick(self) -> None:
        self.turn += 1
        self._handle = asyncio.get_running_loop().call_soon(self._tick)


def pieces(log: list[str], name: str, count: int) -> Iterator[Callable[[], str]]:
    """Work that logs when it is taken and when it runs."""
    for n in range(count):
        log.append(f"take {name}{n}")
        yield lambda n=n: _run(log, f"{name}{n}")


def _run(log: list[str], label: str) -> str:
    log.append(f"run {label}")
    return label


async def test_a_lone_piece_of_work_runs_at_once() -> None:
    """Nothing else runs before it: a single push waits for no turn."""
    log: list[str] = []
    asyncio.get_running_loop().call_soon(log.append, "other work")
    assert await Turns().run(pieces(log, "a", 1)) == ["a0"]
    assert log == ["take a0", "run a0"]


async def test_work_past_the_budget_waits_for_later_turns() -> None:
    """With no time to share, each turn does one piece: the rest is taken when its turn comes."""
    log: list[str] = []
    ran_in: list[int] = []
    with LoopTurns() as turns_seen:

        def piece(n: int) -> int:
            ran_in.append(turns_seen.turn)
            log.append(f"run {n}")
            return n

        def work() -> Iterator[Callable[[], int]]:
            for n in range(5):
                log.append(f"take {n}")
                yield lambda n=n: piece(n)

        assert await Turns(budget=0).run(work()) == [0, 1, 2, 3, 4]
    assert ran_in == sorted(set(ran_in))  # each in a turn of its own
    assert log == [entry for n in range(5) for entry in (f"take {n}", f"run {n}")]


async def test_callers_take_turns_in_order() -> None:
    """A later caller's work waits behind an earlier caller's, even if it is small."""
    turns = Turns(budget=0)
    log: list[str] = []
    first = asyncio.create_task(turns.run(pieces(log, "a", 3)))
    second = asyncio.create_task(turns.run(pieces(log, "b", 2)))
    assert await asyncio.gather(first, second) == [["a0", "a1", "a2"], ["b0", "b1"]]
    assert [entry for entry in log if entry.startswith("run")] == [
        "run a0",
        "run a1",
        "run a2",
        "run b0",
        "run b1",
    ]


async def test_a_cancelled_caller_still_has_its_work_done() -> None:
    """Pushes a caller handed over are not lost when the caller is cancelled."""
    turns = Turns(budget=0)
    log: list[str] = []
    caller = asyncio.create_task(turns.run(pieces(log, "a", 4)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await turns.async_flush()
    assert [entry for entry in log if entry.startswith("run")] == [
        f"run a{n}" for n in range(4)
    ]


async def test_an_error_reaches_its_own_caller_only() -> None:
    """A failing piece ends its caller's work with the error; the next caller is served."""
    turns = Turns(budget=0)

    def broken() -> Iterator[Callable[[], str]]:
        yield lambda: "fine"
        yield _raise

    first = asyncio.create_task(turns.run(broken()))
    second = asyncio.create_task(turns.run(pieces([], "b", 2)))
    with pytest.raises(ValueError, match="broken piece"):
        await first
    assert await second == ["b0", "b1"]
    await turns.async_flush()


def _raise() -> str:
    raise ValueError("broken piece")


async def test_flush_with_nothing_waiting_returns() -> None:
    """Unloading a hub that sent nothing does not wait."""
    await Turns().async_flush()
