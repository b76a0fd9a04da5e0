"""One scenario for every outage: deliveries stream in, a part of the stack goes
away and comes back, and afterwards the answers and the database must agree.

What must hold (see tests/support/load.py for the checks):
- every delivery answered 2xx is stored exactly once and fully applied, with
  the customers' totals consistent with their orders;
- every other one got 503 with Retry-After, or no answer at all, and every
  answer came within 5 s;
- the service recovers by itself, without being restarted, within
  RECOVER_WITHIN seconds of the part's return.

Every problem found is reported together, so that a slow recovery does not
hide lost data (or the other way round).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import httpx

from app.devtools.stack import Stack
from tests.support import load
from tests.support.load import Answer, OrderFactory, Streams

STREAMS = 8  # concurrent senders
FLOWING = 40  # deliveries accepted before the fault is injected
DOWN_FOR = 1.0  # seconds the part stays away
RECOVER_WITHIN = 5.0  # seconds from the part's return to a delivery accepted again
AFTER_RECOVERY = 0.5  # seconds the streams keep going once deliveries are accepted again
SETTLE_WITHIN = 20.0  # seconds to wait for readiness before checking the database anyway


@dataclass(frozen=True)
class Outage:
    answers: list[Answer]
    broken_at: float  # when the part started going away
    down_at: float  # when it was gone
    repairing_at: float  # when it started coming back
    repaired_at: float  # when it was back
    recovered_at: float | None  # when a delivery sent after the repair was first accepted

    @property
    def recovery(self) -> float | None:
        """Seconds from the repair to the first delivery accepted again."""
        return None if self.recovered_at is None else self.recovered_at - self.repaired_at


async def stream_through(
    stack: Stack,
    shops: list[str],
    break_part: Callable[[], object],
    repair: Callable[[], object],
) -> Outage:
    """Run STREAMS senders; once they flow, break a part, wait DOWN_FOR, repair it.

    The senders go on until a delivery sent after the repair is accepted (and
    AFTER_RECOVERY more), or RECOVER_WITHIN plus a client timeout has passed.
    """
    streams = Streams(stack.base_url, OrderFactory(shops), count=STREAMS)
    async with streams.running():
        await load.eventually(
            lambda: streams.accepted_count() >= FLOWING, 30, "the streams to flow"
        )
        broken_at = time.monotonic()
        await asyncio.to_thread(break_part)
        down_at = time.monotonic()
        await asyncio.sleep(DOWN_FOR)
        repairing_at = time.monotonic()
        await asyncio.to_thread(repair)
        repaired_at = time.monotonic()

        def accepted_since_repair() -> list[Answer]:
            return [a for a in streams.answers if a.accepted and a.started >= repaired_at]

        deadline = repaired_at + RECOVER_WITHIN + load.CLIENT_TIMEOUT
        while time.monotonic() < deadline:
            if accepted_since_repair():
                break
            await asyncio.sleep(0.05)
        recovered = accepted_since_repair()
        recovered_at = min(answer.finished for answer in recovered) if recovered else None
        if recovered:
            await asyncio.sleep(AFTER_RECOVERY)
    return Outage(
        list(streams.answers), broken_at, down_at, repairing_at, repaired_at, recovered_at
    )


def describe(outage: Outage, stack: Stack) -> str:
    """The answers, the service's log tail and PgBouncer's, for failure messages."""
    counts = Counter(
        str(a.status) if a.status is not None else str(a.error).split(":")[0]
        for a in outage.answers
    )
    slowest = sorted(outage.answers, key=lambda answer: answer.elapsed)[-3:]
    bouncer = stack.pgbouncer.log() if stack.pgbouncer is not None else ""
    refusals = Counter(
        line.split("closing because: ", 1)[1].split(" (age")[0]
        for line in bouncer.splitlines()
        if "closing because: " in line
    )
    return (
        f"\nanswers by status: {dict(counts)}; slowest: {[str(a) for a in slowest]}"
        f"\nPgBouncer closed client connections because: {dict(refusals.most_common(5))}"
        f"\n--- PgBouncer log (tail) ---\n{bouncer[-2000:]}"
        f"\n--- service log (tail) ---\n{stack.log()[-3000:]}"
    )


async def check_outage(stack: Stack, outage: Outage, pid: int, shops: list[str]) -> None:
    """Everything the module docstring promises; every broken promise in one failure."""
    problems: list[str] = []

    # The fault was real: deliveries were accepted before it, and deliveries sent
    # while the part was gone were refused or waited for its return. (Waiting is
    # fine: behind PgBouncer a short PostgreSQL restart can cost no delivery.)
    if not any(a.accepted and a.finished < outage.broken_at for a in outage.answers):
        problems.append("no delivery was accepted before the fault")
    sent_while_down = [
        a for a in outage.answers if outage.down_at <= a.started < outage.repairing_at
    ]
    if not sent_while_down:
        problems.append("no delivery was sent while the part was gone")
    accepted_while_down = [
        str(a) for a in sent_while_down if a.accepted and a.finished < outage.repairing_at
    ]
    if accepted_while_down:
        problems.append(
            f"accepted while the part was gone, so it was not: {accepted_while_down[:3]}"
        )

    # Recovery, by the same process, in time.
    if outage.recovery is None or outage.recovery >= RECOVER_WITHIN:
        took = "none at all" if outage.recovery is None else f"after {outage.recovery:.2f} s"
        problems.append(f"no delivery accepted within {RECOVER_WITHIN} s of the repair ({took})")
    if not (stack.running and stack.pid == pid):
        problems.append("the service was restarted or died")

    # Every answer as the contract says, in time.
    problems += load.unexpected_answers(outage.answers)

    # Ready again and accepting a fresh delivery (waited for longer, so that
    # the database checks below run even when recovery was too slow).
    answers = list(outage.answers)
    async with load.client(stack.base_url) as http:
        ready_at_once = await is_ready(http)
        try:
            await load.eventually(lambda: is_ready(http), SETTLE_WITHIN, "/health/ready: 200")
        except AssertionError as error:
            problems.append(str(error))
        else:
            since_repair = time.monotonic() - outage.repaired_at
            if not ready_at_once and since_repair >= RECOVER_WITHIN:
                problems.append(f"/health/ready answered 200 only {since_repair:.2f} s after")
            fresh = await load.send(http, OrderFactory(shops, first_order_id=9_000_000)())
            answers.append(fresh)
            if (fresh.status, fresh.outcome) != (200, "processed") or (
                fresh.elapsed >= load.ANSWER_WITHIN
            ):
                problems.append(f"a fresh delivery once ready: {fresh}")

    # The database agrees with what every client was told.
    assert stack.postgres_url is not None
    connection = await asyncpg.connect(stack.postgres_url, timeout=10)
    try:
        problems += await load.stored_problems(connection, answers)
        mismatches = await load.totals_mismatches(connection, shops)
        if mismatches:
            problems.append(f"customer totals differ from their orders: {mismatches[:5]}")
        customers = await connection.fetchval(
            "SELECT count(*) FROM customers WHERE shop_id = ANY($1::text[])", shops
        )
        if not customers:
            problems.append("no customer was stored: the totals check checked nothing")
    finally:
        await asyncio.wait_for(connection.close(), 5)

    assert not problems, "\n".join(problems[:20]) + describe(outage, stack)


async def is_ready(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/health/ready")).status_code == 200
    except httpx.TransportError:
        return False
