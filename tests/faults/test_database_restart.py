"""PostgreSQL restarted while deliveries stream in through PgBouncer.

`pg_ctl stop -m fast` ends every session (transactions in flight roll back,
PgBouncer's server connections drop), the server stays down for a second,
then starts on the same data directory. The service is not touched.
"""

from __future__ import annotations

import pytest

from app.devtools.stack import Stack
from tests.faults.outage import check_outage, stream_through
from tests.support.load import unique_shop

pytestmark = [pytest.mark.pgbouncer, pytest.mark.timed, pytest.mark.timeout(90)]


async def test_postgres_restart_mid_stream_loses_nothing_and_recovers(stack: Stack) -> None:
    assert stack.postgres is not None
    postgres = stack.postgres
    shops = [unique_shop("pg-restart"), unique_shop("pg-restart")]
    pid = stack.pid

    outage = await stream_through(stack, shops, postgres.stop, postgres.start)

    await check_outage(stack, outage, pid, shops)
