"""Group commit: what arrives while a database call is in flight goes into the next one, together.

Most of PostgreSQL's work for a small write is around it: the statement, the
transaction, the commit (a WAL flush) and the round trips. A worker under
load therefore sends the items that queued while its database call was in
flight together, in its next call: one statement, one transaction, one
commit. An idle worker sends an item at once, alone: nothing waits for a
timer. One call at a time makes the largest groups, hence the least work per
item, but leaves PostgreSQL idle while the worker waits for the commit; so a
next call starts once the calls in flight have been so for SLOW_CALL_SECONDS,
which also keeps one stuck call (waiting for a row lock, say) from holding
up every item behind it.

With a `key`, a group holds only items of one key (the first waiting item's),
the others keeping their place in the queue: on Citus the deliveries of one
shop go to one node, where a group of several shops would be a distributed
transaction (two-phase commit) over their nodes.

Every item is answered only from its own call's outcome: its result once the
call has committed, or an error. The guarantees of a call made alone hold:

- Time: an item waits to be sent at most DB_ACQUIRE_TIMEOUT (as it would for
  a pooled connection), and its call is bounded by the earliest deadline of
  the items in it (`Database.deadline()`, taken by the caller). Past either,
  DatabaseUnavailable (503).
- Failure: when the call fails, nothing of the group was committed. Deadlocks
  and serialization failures are retried (`Database.fetch`); an error that
  one item's values may have caused (`alone_on`) makes each item of the group
  go again alone, so that a bad item fails only itself; any other error is
  DatabaseUnavailable for every item of the group.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.db.database import DatabaseUnavailable, describe_error

Item = TypeVar("Item")
Result = TypeVar("Result")

# Items per call. Each item's writes and advisory locks stay in the
# transaction until its commit; a few dozen keep it short.
MAX_GROUP = 32
# After this long in flight a call no longer keeps the next one waiting.
# Longer leaves PostgreSQL idle while a worker waits for its commit; shorter
# makes smaller groups without going faster (bench/README.md, What moved the
# figures).
SLOW_CALL_SECONDS = 0.005
# Calls in flight at most, slow ones included.
MAX_IN_FLIGHT = 3


@dataclass(eq=False)
class _Waiter(Generic[Item, Result]):
    item: Item
    deadline: float  # loop time by which the item must be answered
    future: asyncio.Future[Result]
    expiry: asyncio.TimerHandle | None = None
    sent: bool = False


class GroupCommit(Generic[Item, Result]):
    """Sends submitted items in groups, through `send`, one group per database call.

    `send(items, deadline)` makes the call and returns one result per item, in
    order, once it has committed. It must fail as a whole: either every item is
    committed or none is. With `key`, the items of a group all have one key.
    """

    def __init__(
        self,
        send: Callable[[Sequence[Item], float], Awaitable[Sequence[Result]]],
        *,
        wait_limit: float,
        alone_on: Callable[[BaseException], bool],
        max_group: int = MAX_GROUP,
        slow_call: float = SLOW_CALL_SECONDS,
        max_in_flight: int = MAX_IN_FLIGHT,
        key: Callable[[Item], Hashable] | None = None,
    ) -> None:
        self._send = send
        self._key = key
        self.wait_limit = wait_limit
        self._alone_on = alone_on
        self.max_group = max_group
        self.slow_call = slow_call
        self.max_in_flight = max_in_flight
        self.loop = asyncio.get_running_loop()
        self._waiting: deque[_Waiter[Item, Result]] = deque()
        # When each call in flight started (loop time).
        self._in_flight: dict[asyncio.Task[None], float] = {}
        self._dispatch_scheduled = False
        self._recheck: asyncio.TimerHandle | None = None

    async def submit(self, item: Item, deadline: float) -> Result:
        """The item's result once its group has committed; DatabaseUnavailable past `deadline`."""
        waiter: _Waiter[Item, Result] = _Waiter(item, deadline, self.loop.create_future())
        send_by = min(deadline, self.loop.time() + self.wait_limit)
        waiter.expiry = self.loop.call_at(send_by, self._expire, waiter)
        self._waiting.append(waiter)
        if not self._dispatch_scheduled:
            # Items submitted in this turn of the event loop go together.
            self._dispatch_scheduled = True
            self.loop.call_soon(self._dispatch)
        # Cancelling the caller cancels the future: a waiting item is then
        # skipped; a sent one is still committed with its group, unanswered.
        return await waiter.future

    def _expire(self, waiter: _Waiter[Item, Result]) -> None:
        if not waiter.sent and not waiter.future.done():
            waiter.future.set_exception(DatabaseUnavailable("no database connection free in time"))

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        while self._waiting and self._may_start_call():
            group = self._next_group()
            if group:
                call = self.loop.create_task(self._call(group))
                self._in_flight[call] = self.loop.time()
        if self._waiting and self._in_flight:
            self._recheck_when_a_call_turns_slow()

    def _may_start_call(self) -> bool:
        now = self.loop.time()
        slow = sum(now - started >= self.slow_call for started in self._in_flight.values())
        return len(self._in_flight) < min(1 + slow, self.max_in_flight)

    def _recheck_when_a_call_turns_slow(self) -> None:
        if self._recheck is not None or len(self._in_flight) >= self.max_in_flight:
            return
        now = self.loop.time()
        turns_slow = [
            started + self.slow_call
            for started in self._in_flight.values()
            if now - started < self.slow_call
        ]
        if turns_slow:
            self._recheck = self.loop.call_at(min(turns_slow), self._recheck_now)

    def _recheck_now(self) -> None:
        self._recheck = None
        self._dispatch()

    def _next_group(self) -> list[_Waiter[Item, Result]]:
        group: list[_Waiter[Item, Result]] = []
        # Items of another key than the group's, in their order, to wait for a later group.
        passed: list[_Waiter[Item, Result]] = []
        group_key: Hashable = None
        while self._waiting and len(group) < self.max_group:
            waiter = self._waiting.popleft()
            if waiter.future.done():  # expired or cancelled while waiting
                continue
            if self._key is not None:
                key = self._key(waiter.item)
                if group and key != group_key:
                    passed.append(waiter)
                    continue
                group_key = key
            waiter.sent = True
            if waiter.expiry is not None:
                waiter.expiry.cancel()
            group.append(waiter)
        self._waiting.extendleft(reversed(passed))
        return group

    async def _call(self, group: list[_Waiter[Item, Result]]) -> None:
        try:
            await self._answer(group)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.pop(task, None)
            self._dispatch()

    async def _answer(self, group: list[_Waiter[Item, Result]]) -> None:
        try:
            results = await self._send(
                [waiter.item for waiter in group], min(waiter.deadline for waiter in group)
            )
        except asyncio.CancelledError:
            for waiter in group:
                waiter.future.cancel()
            raise
        except Exception as error:
            if len(group) == 1:
                _fail(group[0], error)
            elif self._alone_on(error):
                # One of them may be at fault: each goes again alone.
                for waiter in group:
                    await self._answer([waiter])
            else:
                for waiter in group:
                    _fail(waiter, _unavailable(error))
            return
        if len(results) != len(group):
            mismatch = RuntimeError(f"{len(results)} results for a group of {len(group)}")
            for waiter in group:
                _fail(waiter, mismatch)
            return
        for waiter, result in zip(group, results, strict=True):
            if not waiter.future.done():  # done: its caller was cancelled
                waiter.future.set_result(result)


def _fail(waiter: _Waiter[Item, Result], error: BaseException) -> None:
    if not waiter.future.done():  # done: its caller was cancelled
        waiter.future.set_exception(error)


def _unavailable(error: Exception) -> DatabaseUnavailable:
    """The error of a failed group call, for each of its items (none was committed)."""
    if isinstance(error, DatabaseUnavailable):
        unavailable = DatabaseUnavailable(str(error))
    else:
        unavailable = DatabaseUnavailable(
            f"the group's database call failed: {describe_error(error)}"
        )
    unavailable.__cause__ = error
    return unavailable
