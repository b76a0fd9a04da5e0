"""Incremental sync: what changed since the watermark, page by page, oldest change first.

The query asks for `updated_at:>=` the watermark minus an overlap, so objects
sharing the watermark's timestamp (or indexed by Shopify a little late) are
not missed; fetching one twice is harmless, since applying is idempotent.
Pages are sized so that one query costs at most 1,000 points (Shopify's limit
for a single query) and no more than the bucket holds, from what the last
answer said a node costs.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from app.db.database import Database
from app.db.enums import SyncResource
from app.shopify.client import MAX_QUERY_COST, AdminClient, answer_part
from app.shopify.errors import InvalidAnswer
from app.shopify.nodes import CustomerNode, LineItemNode, LineItemPage, OrderNode, PageInfo
from app.shopify.queries import CUSTOMERS_PAGE, ORDER_LINE_ITEMS, ORDERS_PAGE
from app.sync.apply import apply_batch
from app.sync.records import RecordError, customer_record, decode_node, order_record
from app.sync.runs import ReportProgress, Run, RunCounts, sync_state

log = logging.getLogger("app.sync")

OVERLAP = timedelta(minutes=5)
MAX_PAGE_SIZE = 250
# Line items asked for with each order; an order with more gets the rest by
# a query of its own.
LINE_ITEMS_PER_ORDER = 20
LINE_ITEM_COST = 6.0
LINE_ITEMS_PER_QUERY = 150
# Estimated cost of one node (refined from each answer's requestedQueryCost).
NODE_COST = {
    SyncResource.customers: 3.0,
    SyncResource.orders: 8.0 + LINE_ITEMS_PER_ORDER * LINE_ITEM_COST,
}


class Page(msgspec.Struct, rename="camel"):
    """A connection as the page queries ask for it; nodes are checked one by one."""

    page_info: PageInfo
    nodes: list[Any]


class OrderLineItems(msgspec.Struct, rename="camel"):
    line_items: Any = None


class OrderAnswer(msgspec.Struct):
    order: OrderLineItems | None = None


class PageSizer:
    """How many nodes to ask for, so that a page costs at most what may be spent at once."""

    def __init__(self, node_cost: float) -> None:
        self.node_cost = node_cost

    def size(self, client: AdminClient) -> int:
        budget = min(MAX_QUERY_COST, client.bucket.maximum) - 2  # 2: the connection itself
        return max(1, min(MAX_PAGE_SIZE, int(budget // self.node_cost)))

    def cost(self, first: int) -> float:
        return 2 + first * self.node_cost

    def learn(self, requested_cost: int | None, first: int) -> None:
        if requested_cost is not None and first > 0:
            self.node_cost = max(1.0, (requested_cost - 2) / first)


async def sync_incrementally(
    database: Database,
    client: AdminClient,
    run: Run,
    resource: SyncResource,
    on_progress: ReportProgress,
) -> None:
    async with database.connection() as connection:
        state = await sync_state(connection, run.shop, resource)
    since = state.watermark - OVERLAP if state.watermark else None
    search = f"updated_at:>='{_search_time(since)}'" if since else ""
    sizer = PageSizer(NODE_COST[resource])
    cursor: str | None = None
    while True:
        started = time.perf_counter()
        first = sizer.size(client)
        variables: dict[str, Any] = {"first": first, "after": cursor, "query": search}
        if resource is SyncResource.orders:
            variables["lineItems"] = LINE_ITEMS_PER_ORDER
        document = CUSTOMERS_PAGE if resource is SyncResource.customers else ORDERS_PAGE
        answer = await client.query(document, variables, cost=sizer.cost(first))
        sizer.learn(answer.requested_cost, first)
        page = answer_part(answer.data.get(resource.value), Page, resource.value)
        records, counts, newest = await _records(client, resource, page.nodes)
        applied = await apply_batch(database, run.shop, resource, records, watermark=newest)
        counts.add(applied)
        run.counts.add(counts)
        _log_page(run, resource, counts, time.perf_counter() - started)
        await on_progress(run)
        if not page.page_info.has_next_page:
            return
        cursor = _next_cursor(page.page_info, cursor)


async def _records(
    client: AdminClient, resource: SyncResource, nodes: list[Any]
) -> tuple[list[dict[str, Any]], RunCounts, datetime | None]:
    """The page's nodes as records, the counts so far, and the newest updated_at seen."""
    records: list[dict[str, Any]] = []
    counts = RunCounts(fetched=len(nodes))
    newest: datetime | None = None
    for node in nodes:
        try:
            if resource is SyncResource.customers:
                customer = decode_node(node, CustomerNode)
                updated_at = customer.updated_at
                records.append(customer_record(customer))
            else:
                order = decode_node(node, OrderNode)
                updated_at = order.updated_at
                records.append(order_record(order, await _all_line_items(client, order)))
        except RecordError as error:
            counts.failed += 1
            log.warning(
                "fetched object skipped",
                extra={"fields": {"shop": client.shop, "resource": resource, "reason": str(error)}},
            )
            continue
        newest = updated_at if newest is None else max(newest, updated_at)
    return records, counts, newest


async def _all_line_items(client: AdminClient, order: OrderNode) -> list[LineItemNode]:
    page = order.line_items or LineItemPage(nodes=[])
    items = list(page.nodes)
    cursor: str | None = None
    while page.page_info is not None and page.page_info.has_next_page:
        cursor = _next_cursor(page.page_info, cursor)
        answer = await client.query(
            ORDER_LINE_ITEMS,
            {"id": order.id, "first": LINE_ITEMS_PER_QUERY, "after": cursor},
            cost=2 + LINE_ITEMS_PER_QUERY * LINE_ITEM_COST,
        )
        found = answer_part(answer.data, OrderAnswer, "order").order or OrderLineItems()
        page = decode_node(found.line_items, LineItemPage)
        items.extend(page.nodes)
    return items


def _next_cursor(page_info: PageInfo, previous: str | None) -> str:
    """The cursor of the next page; an answer that says there is one must name a new one."""
    cursor = page_info.end_cursor
    if not cursor or cursor == previous:
        raise InvalidAnswer("pageInfo says there is a next page but gives no new endCursor")
    return cursor


def _search_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log_page(run: Run, resource: SyncResource, counts: RunCounts, seconds: float) -> None:
    log.info(
        "sync page applied",
        extra={
            "fields": {
                "run_id": str(run.id),
                "shop": run.shop,
                "resource": resource.value,
                "fetched": counts.fetched,
                "applied": counts.applied,
                "stale": counts.stale,
                "failed": counts.failed,
                "duration_ms": round(seconds * 1000, 1),
            }
        },
    )
