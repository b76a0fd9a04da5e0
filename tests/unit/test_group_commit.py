"""GroupCommit (app/db/group_commit.py) with a fake sender: no database.

The fake records every call and answers it only when the test says so, so
each test knows what is in flight and what was grouped, and waits for events
(a call starting, an answer), never for a stretch of time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import pytest

from app.db.database import DatabaseUnavailable
from app.db.group_commit import GroupCommit

# Long enough that no timer of the group commit fires during a test unless
# the test set it short on purpose.
NEVER = 3600.0


class Refused(Exception):
    """What the fake raises for a call holding a "bad" item: one item's fault (alone_on)."""


def one_item_at_fault(error: BaseException) -> bool:
    return isinstance(error, Refused)


@dataclass
class Call:
    items: list[str]
    deadline: float
    outcome: asyncio.Future[Sequence[str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def answer(self) -> None:
        """Commit: one result per item, the item upper-cased."""
        self.outcome.set_result([item.upper() for item in self.items])

    def fail(self, error: Exception) -> None:
        self.outcome.set_exception(error)


class FakeSender:
    """`send` for a GroupCommit: each call waits until the test answers or fails it."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._started: asyncio.Queue[Call] = asyncio.Queue()

    async def send(self, items: Sequence[str], deadline: float) -> Sequence[str]:
        call = Call(list(items), deadline)
        self.calls.append(call)
        self._started.put_nowait(call)
        return await call.outcome

    async def next_call(self) -> Call:
        return await self._started.get()

    def no_call_waiting(self) -> bool:
        return self._started.empty()


def group_commit(
    sender: FakeSender,
    *,
    wait_limit: float = NEVER,
    slow_call: float = NEVER,
    max_group: int = 32,
    max_in_flight: int = 3,
    key: Callable[[str], Hashable] | None = None,
) -> GroupCommit[str, str]:
    """By default calls never turn slow: one call at a time, as under steady load."""
    return GroupCommit(
        sender.send,
        wait_limit=wait_limit,
        alone_on=one_item_at_fault,
        max_group=max_group,
        slow_call=slow_call,
        max_in_flight=max_in_flight,
        key=key,
    )


def submit(commit: GroupCommit[str, str], item: str, within: float = NEVER) -> asyncio.Task[str]:
    deadline = asyncio.get_running_loop().time() + within
    return asyncio.ensure_future(commit.submit(item, deadline))


async def a_few_turns() -> None:
    """Let every callback already scheduled run (dispatches are scheduled with call_soon)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_idle_item_is_sent_at_once_alone() -> None:
    sender = FakeSender()
    commit = group_commit(sender)
    result = submit(commit, "a")
    call = await sender.next_call()
    assert call.items == ["a"]
    call.answer()
    assert await result == "A"


async def test_items_submitted_in_one_turn_go_in_one_call_each_answered_its_own() -> None:
    sender = FakeSender()
    commit = group_commit(sender)
    results = [submit(commit, item) for item in ("a", "b", "c")]
    call = await sender.next_call()
    assert call.items == ["a", "b", "c"]
    call.answer()
    assert await asyncio.gather(*results) == ["A", "B", "C"]
    assert len(sender.calls) == 1


async def test_items_arriving_while_a_call_is_in_flight_go_together_in_the_next() -> None:
    sender = FakeSender()
    commit = group_commit(sender)
    first = submit(commit, "a")
    in_flight = await sender.next_call()
    later = []
    for item in ("b", "c", "d"):  # one by one, each in a turn of its own
        later.append(submit(commit, item))
        await a_few_turns()
    assert sender.no_call_waiting(), "a second call started while the first was in flight"

    in_flight.answer()
    assert await first == "A"
    grouped = await sender.next_call()
    assert grouped.items == ["b", "c", "d"]
    grouped.answer()
    assert await asyncio.gather(*later) == ["B", "C", "D"]


async def test_a_group_holds_at_most_max_group_items() -> None:
    sender = FakeSender()
    commit = group_commit(sender, max_group=2)
    results = [submit(commit, item) for item in ("a", "b", "c")]
    first = await sender.next_call()
    assert first.items == ["a", "b"]
    first.answer()
    second = await sender.next_call()
    assert second.items == ["c"]
    second.answer()
    assert await asyncio.gather(*results) == ["A", "B", "C"]


async def test_with_a_key_a_group_holds_one_key_and_the_others_keep_their_place() -> None:
    """Per shop on Citus: items "<shop>:<id>", keyed by shop."""
    sender = FakeSender()
    commit = group_commit(sender, key=lambda item: item.split(":")[0])
    first = submit(commit, "a:1")
    in_flight = await sender.next_call()
    later = [submit(commit, item) for item in ("b:1", "a:2", "b:2", "c:1", "a:3")]
    await a_few_turns()
    in_flight.answer()
    assert await first == "A:1"
    groups = []
    for _ in range(3):  # one call at a time: each starts once the one before is answered
        call = await sender.next_call()
        groups.append(call.items)
        call.answer()
    assert groups == [["b:1", "b:2"], ["a:2", "a:3"], ["c:1"]]
    assert await asyncio.gather(*later) == ["B:1", "A:2", "B:2", "C:1", "A:3"]


async def test_a_call_in_flight_past_slow_call_lets_the_next_one_start() -> None:
    """A stuck call (waiting for a lock, say) does not hold up the items behind it."""
    sender = FakeSender()
    commit = group_commit(sender, slow_call=0.001, max_in_flight=2)
    stuck = submit(commit, "stuck")
    stuck_call = await sender.next_call()
    behind = submit(commit, "behind")
    # Only the stuck call turning slow can start this one: it is never answered before.
    behind_call = await sender.next_call()
    assert behind_call.items == ["behind"]
    behind_call.answer()
    assert await behind == "BEHIND"
    assert not stuck.done()
    stuck_call.answer()
    assert await stuck == "STUCK"


async def test_no_more_than_max_in_flight_calls_at_once() -> None:
    sender = FakeSender()
    commit = group_commit(sender, slow_call=0.0, max_in_flight=2)
    first = submit(commit, "a")
    calls = [await sender.next_call()]
    second = submit(commit, "b")
    calls.append(await sender.next_call())
    third = submit(commit, "c")
    await a_few_turns()
    assert sender.no_call_waiting(), "a third call started with two in flight"

    calls[0].answer()
    assert await first == "A"
    last = await sender.next_call()
    assert last.items == ["c"]
    for call in (calls[1], last):
        call.answer()
    assert (await second, await third) == ("B", "C")


async def test_an_error_one_item_may_cause_reruns_each_item_alone() -> None:
    sender = FakeSender()
    commit = group_commit(sender)
    results = [submit(commit, item) for item in ("a", "bad", "c")]
    group = await sender.next_call()
    group.fail(Refused("value out of range"))
    for expected in (["a"], ["bad"], ["c"]):  # one after another, in order
        alone = await sender.next_call()
        assert alone.items == expected
        if expected == ["bad"]:
            alone.fail(Refused("value out of range"))
        else:
            alone.answer()
    outcomes = await asyncio.gather(*results, return_exceptions=True)
    assert outcomes[0] == "A" and outcomes[2] == "C"
    assert isinstance(outcomes[1], Refused)
    assert len(sender.calls) == 4


async def test_any_other_error_fails_every_item_of_the_group_as_unavailable() -> None:
    sender = FakeSender()
    commit = group_commit(sender)
    results = [submit(commit, item) for item in ("a", "b")]
    group = await sender.next_call()
    error = ConnectionResetError("connection lost")
    group.fail(error)
    outcomes = await asyncio.gather(*results, return_exceptions=True)
    for outcome in outcomes:
        assert isinstance(outcome, DatabaseUnavailable)
        assert "the group's database call failed" in str(outcome)
        assert outcome.__cause__ is error
    assert len(sender.calls) == 1, "nothing is sent again"


async def test_an_unavailable_group_passes_its_message_on_to_each_item() -> None:
    sender = FakeSender()
    commit = group_commit(sender)
    results = [submit(commit, item) for item in ("a", "b")]
    (await sender.next_call()).fail(DatabaseUnavailable("statement timeout"))
    outcomes = await asyncio.gather(*results, return_exceptions=True)
    assert [str(outcome) for outcome in outcomes] == ["statement timeout"] * 2
    assert all(isinstance(outcome, DatabaseUnavailable) for outcome in outcomes)


async def test_an_item_sent_alone_gets_its_call_error_as_it_is() -> None:
    sender = FakeSender()
    commit = group_commit(sender)
    result = submit(commit, "a")
    error = ConnectionResetError("connection lost")
    (await sender.next_call()).fail(error)
    with pytest.raises(ConnectionResetError) as raised:
        await result
    assert raised.value is error


async def test_a_call_answering_the_wrong_number_of_results_fails_each_item() -> None:
    sender = FakeSender()
    commit = group_commit(sender)
    results = [submit(commit, item) for item in ("a", "b")]
    (await sender.next_call()).outcome.set_result(["A"])
    outcomes = await asyncio.gather(*results, return_exceptions=True)
    for outcome in outcomes:
        assert isinstance(outcome, RuntimeError)
        assert "1 results for a group of 2" in str(outcome)


async def test_a_call_is_bounded_by_the_earliest_deadline_of_its_items() -> None:
    sender = FakeSender()
    commit = group_commit(sender)
    now = asyncio.get_running_loop().time()
    results = [
        asyncio.ensure_future(commit.submit("late", now + 200)),
        asyncio.ensure_future(commit.submit("early", now + 100)),
    ]
    call = await sender.next_call()
    assert call.deadline == now + 100
    call.answer()
    await asyncio.gather(*results)


async def test_an_item_not_sent_within_the_wait_limit_gets_unavailable_unsent() -> None:
    """Like waiting for a pooled connection: bounded by DB_ACQUIRE_TIMEOUT (the wait limit)."""
    sender = FakeSender()
    commit = group_commit(sender, wait_limit=0.05, max_in_flight=1)
    in_flight = submit(commit, "a")
    call = await sender.next_call()
    waiting = submit(commit, "b")
    # Only the wait limit can end this: the call in flight is not answered before.
    with pytest.raises(DatabaseUnavailable, match="no database connection free in time"):
        await waiting
    assert not in_flight.done()
    call.answer()
    assert await in_flight == "A"
    await a_few_turns()
    assert [sent.items for sent in sender.calls] == [["a"]], "the expired item was sent"


async def test_an_item_expires_at_its_deadline_when_that_comes_before_the_wait_limit() -> None:
    sender = FakeSender()
    commit = group_commit(sender, max_in_flight=1)  # the wait limit: NEVER
    in_flight = submit(commit, "a")
    call = await sender.next_call()
    with pytest.raises(DatabaseUnavailable, match="no database connection free in time"):
        await submit(commit, "b", within=0.05)
    call.answer()
    assert await in_flight == "A"


async def test_a_cancelled_waiting_item_is_left_out_of_the_next_call() -> None:
    sender = FakeSender()
    commit = group_commit(sender)
    first = submit(commit, "a")
    in_flight = await sender.next_call()
    cancelled, kept = submit(commit, "b"), submit(commit, "c")
    await a_few_turns()
    cancelled.cancel()
    in_flight.answer()
    assert await first == "A"
    call = await sender.next_call()
    assert call.items == ["c"]
    call.answer()
    assert await kept == "C"
    assert cancelled.cancelled()
