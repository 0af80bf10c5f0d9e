"""Deliveries handled together (workers/runtime/together.py): what forms a batch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from workers.runtime.service import one_after_another
from workers.runtime.together import Together


class Answer(BaseModel):
    text: str


class Recorder:
    """A batch runner that records its batches and can be held mid-batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()

    async def run(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        self.started.set()
        await self.release.wait()
        return [item * 10 for item in items]


async def test_what_arrives_at_once_goes_in_one_batch_and_each_gets_its_own_result() -> None:
    recorder = Recorder()
    together = Together(recorder.run, limit=16)
    results = await asyncio.gather(*(together.submit(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert recorder.batches == [[0, 1, 2, 3, 4]]


async def test_what_arrives_during_a_batch_waits_for_the_next_one_at_most_limit_at_a_time() -> None:
    recorder = Recorder()
    together = Together(recorder.run, limit=4)
    recorder.release.clear()
    first = asyncio.ensure_future(together.submit(0))
    await recorder.started.wait()  # the first batch runs, alone, and is held
    later = [asyncio.ensure_future(together.submit(i)) for i in range(1, 7)]
    await asyncio.sleep(0.01)
    assert recorder.batches == [[0]]
    recorder.release.set()
    assert await asyncio.gather(first, *later) == [0, 10, 20, 30, 40, 50, 60]
    assert recorder.batches == [[0], [1, 2, 3, 4], [5, 6]]
    # Idle again: the next one starts a batch at once.
    assert await together.submit(7) == 70
    assert recorder.batches[-1] == [7]


async def test_a_cancelled_batch_leaves_every_waiting_delivery_unsettled() -> None:
    recorder = Recorder()
    together = Together(recorder.run, limit=2)
    recorder.release.clear()
    waiting = [asyncio.ensure_future(together.submit(i)) for i in range(3)]
    await recorder.started.wait()
    task = together._task
    assert task is not None
    task.cancel()
    for future in waiting:
        with pytest.raises(asyncio.CancelledError):
            await future
    # A new submission is not stuck behind the cancelled batch.
    recorder.release.set()
    assert await together.submit(9) == 90


async def test_one_after_another_goes_in_key_order_and_answers_in_arrival_order() -> None:
    """Two batches lock their rows in one order (the key's), never in a circle; among equal
    keys (one order's events) arrival order is kept; each answer goes to its own message."""
    seen: list[tuple[str, int]] = []

    async def handler(payload: tuple[str, int], ctx: Any) -> Answer:
        seen.append(payload)
        return Answer(text=f"{payload[0]}{payload[1]}")

    many = one_after_another(handler, key=lambda payload: payload[0])
    messages = [(("b", 1), None), (("a", 2), None), (("b", 3), None), (("a", 4), None)]
    answers = await many(messages)  # type: ignore[arg-type]
    assert seen == [("a", 2), ("a", 4), ("b", 1), ("b", 3)]
    assert answers == [Answer(text=t) for t in ("b1", "a2", "b3", "a4")]
