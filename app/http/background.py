"""Work an HTTP request started and does not wait for (a sync run, a first connection).

Kept per worker, and cancelled at shutdown, so that each piece records how it ended.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("app")


class BackgroundRuns:
    """Runs started over HTTP, in this worker; cancelled (and recorded as such) at shutdown."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
