"""Deliveries of one queue handled together, in one transaction (issue 14: batch consumption).

Group commit: the first delivery that arrives while no batch is running starts one at
once, with every delivery already received beside it; those that arrive while a batch
runs wait for it and go together in the next. Nothing waits for a batch to fill, so one
delivery alone costs what it did, and under load a batch is as big as what piled up
meanwhile (at most the prefetch: that many deliveries can be unacknowledged).

This module only gathers and hands back; what "together" means (one inbox claim for all,
one transaction, falling back to one at a time) is `WorkerService._execute_many`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Together(Generic[T, R]):
    """Runs `run` on the items submitted meanwhile, at most `limit` at a time, one batch
    after another; each `submit` returns its own item's result."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]], *, limit: int) -> None:
        self._run = run
        self._limit = limit
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            # One turn of the loop: deliveries the connection has read already join the first batch.
            await asyncio.sleep(0)
            while self._waiting:
                taken, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
                try:
                    results = await self._run([item for item, _ in taken])
                except BaseException:  # `run` settles its own failures: this is a cancellation
                    for _, future in [*taken, *self._waiting]:
                        future.cancel()  # unacknowledged, so the broker delivers it again
                    self._waiting = []
                    raise
                for (_, future), result in zip(taken, results, strict=True):
                    if not future.done():  # its delivery was cancelled (a shutdown)
                        future.set_result(result)
        finally:
            self._task = None
