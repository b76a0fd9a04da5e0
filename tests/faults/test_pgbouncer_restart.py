"""PgBouncer killed (SIGKILL) and restarted while deliveries stream in.

Every client connection of the service drops at once, mid-transaction for
some; PgBouncer's server connections to PostgreSQL go too. A second later
PgBouncer starts again on the same port. The service is not touched.
"""

from __future__ import annotations

import pytest

from app.devtools.stack import Stack
from tests.faults.outage import check_outage, stream_through
from tests.support.load import unique_shop

pytestmark = [pytest.mark.pgbouncer, pytest.mark.timed, pytest.mark.timeout(90)]


async def test_pgbouncer_killed_mid_stream_loses_nothing_and_recovers(stack: Stack) -> None:
    assert stack.pgbouncer is not None
    pgbouncer = stack.pgbouncer
    shops = [unique_shop("bouncer-kill"), unique_shop("bouncer-kill")]
    pid = stack.pid

    outage = await stream_through(stack, shops, pgbouncer.kill, pgbouncer.restart)

    await check_outage(stack, outage, pid, shops)
