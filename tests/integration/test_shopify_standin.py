"""The Shopify GraphQL Admin API stand-in, exercised through real HTTP as a sync would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.devtools.standin import FakeShop, Fault, ShopifyStandIn

# Real HTTP to stand-in servers (one of them a process of its own): no
# database, but not a unit test either.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "shpat_test_token"

CUSTOMERS_PAGE = """
query Customers($first: Int!, $after: String, $query: String, $reverse: Boolean) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT, reverse: $reverse) {
    edges { cursor node { id legacyResourceId updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
RUN_BULK = """
mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status type }
    userErrors { field message code }
  }
}
"""
POLL_BULK = """
query Poll($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode objectCount rootObjectCount fileSize url partialDataUrl
    createdAt completedAt query
  }
}
"""
ORDERS_BULK = """
{ orders { edges { node {
    id name updatedAt totalPriceSet { shopMoney { amount currencyCode } }
    customer { id }
    lineItems { edges { node { id sku quantity } } }
} } } }
"""


@pytest.fixture(scope="module", autouse=True)
def standin_process() -> Iterator[subprocess.Popen[str]]:
    """The stand-in as its own process, started first so its schema builds alongside ours."""
    command = [
        sys.executable, "-m", "app.devtools.standin", "--port", "0",
        "--shop", "bench.myshopify.com", "--token", "tok",
        "--customers", "10", "--orders", "20", "--line-items", "2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def shopify() -> Iterator[ShopifyStandIn]:
    """One server (and one schema build) for the whole module."""
    with ShopifyStandIn() as standin:
        yield standin


@pytest.fixture
def shop(shopify: ShopifyStandIn) -> Iterator[FakeShop]:
    """A fresh shop per test, so buckets and bulk operations do not leak between tests."""
    yield shopify.add_shop(f"s{uuid.uuid4().hex[:10]}.myshopify.com", token=TOKEN)
    shopify.clear_faults()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(headers={"X-Shopify-Access-Token": TOKEN}, timeout=10) as http:
        yield http


def post(
    client: httpx.Client,
    shopify: ShopifyStandIn,
    shop: FakeShop,
    query: str,
    variables: dict[str, Any] | None = None,
    version: str = "2026-04",
) -> httpx.Response:
    url = shopify.graphql_url(shop.domain, version)
    return client.post(url, json={"query": query, "variables": variables or {}})


def gql(
    client: httpx.Client,
    shopify: ShopifyStandIn,
    shop: FakeShop,
    document: str,
    /,
    **variables: Any,
) -> dict[str, Any]:
    response = post(client, shopify, shop, document, variables)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def customers_at(shop: FakeShop, *times: str) -> list[dict[str, Any]]:
    return [
        shop.add_customer(
            first_name=f"C{n}",
            last_name="Test",
            email=f"c{n}@example.com",
            phone=None,
            created_at="2025-12-01T00:00:00Z",
            updated_at=at,
        )
        for n, at in enumerate(times)
    ]


# -- HTTP surface -------------------------------------------------------------------------------


def test_wrong_token_unknown_shop_and_bad_json(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    url = shopify.graphql_url(shop.domain)
    wrong = client.post(
        url, json={"query": "{ shop { id } }"}, headers={"X-Shopify-Access-Token": "nope"}
    )
    assert wrong.status_code == 401
    assert wrong.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    assert client.post(shopify.graphql_url("nobody.myshopify.com"), json={}).status_code == 404
    bad = client.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "errors" in bad.json()
    assert client.get(url).status_code == 400
    recorded = shopify.requests[-4]
    assert recorded.kind == "graphql" and recorded.status == 401
    assert recorded.headers["x-shopify-access-token"] == "nope"
    assert recorded.body == {"query": "{ shop { id } }"}


def test_base_url_is_a_template(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    assert shopify.base_url.endswith("/{shop}")
    url = shopify.base_url.format(shop=shop.domain) + "/admin/api/2026-04/graphql.json"
    body = client.post(url, json={"query": "{ shop { id name myshopifyDomain } }"}).json()
    assert body["data"]["shop"]["myshopifyDomain"] == shop.domain
    assert shopify.shop(shop.domain) is shop


# -- validation and deprecations ----------------------------------------------------------------


def test_invalid_queries_are_rejected_without_charge(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    before = shop.bucket.available()
    body = gql(client, shopify, shop, "{ customers(first: 1) { nodes { id nope } } }")
    assert "data" not in body
    [error] = body["errors"]
    assert "nope" in error["message"]
    assert error["locations"] == [{"line": 1, "column": 36}]
    assert error["extensions"]["code"]
    syntax = gql(client, shopify, shop, "{ customers(first: 1) { nodes { id }")
    assert syntax["errors"][0]["extensions"]["code"] == "PARSE_ERROR"
    assert shop.bucket.available() >= before
    assert len(shop.queries) == 2


def test_deprecated_fields_are_recorded(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    customers_at(shop, "2026-01-01T00:00:00Z")
    query = (
        "{ customers(first: 5) { nodes { id email phone defaultEmailAddress { emailAddress } } } }"
    )
    body = gql(client, shopify, shop, query)
    assert body["data"]["customers"]["nodes"][0]["email"] == "c0@example.com"
    assert shop.deprecated_fields_used == {"Customer.email", "Customer.phone"}
    gql(client, shopify, shop, RUN_BULK, query="{ orders { edges { node { id totalPrice } } } }")
    assert "Order.totalPrice" in shop.deprecated_fields_used


# -- data, pagination, filters ------------------------------------------------------------------


def test_pagination_filter_and_sort_by_updated_at(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    tied = "2026-02-01T00:00:00Z"
    created = customers_at(
        shop, "2026-03-01T00:00:00Z", tied, "2025-12-31T23:59:59Z", tied, "2026-01-01T00:00:00Z"
    )
    expected = sorted(
        (c for c in created if c["updated_at"].year == 2026),
        key=lambda c: (c["updated_at"], c["id"]),
    )
    for query in (
        "updated_at:>='2026-01-01T00:00:00Z'",
        "updated_at:>=2026-01-01T00:00:00Z",
        'updated_at:>="2026-01-01T00:00:00+00:00"',
    ):
        seen: list[dict[str, Any]] = []
        after = None
        pages = 0
        while True:
            body = gql(client, shopify, shop, CUSTOMERS_PAGE, first=2, after=after, query=query)
            connection = body["data"]["customers"]
            seen += [edge["node"] for edge in connection["edges"]]
            pages += 1
            assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
            assert after == connection["edges"][-1]["cursor"]
        assert pages == 2
        assert [node["legacyResourceId"] for node in seen] == [str(c["id"]) for c in expected]
        assert seen[0]["id"] == f"gid://shopify/Customer/{expected[0]['id']}"
        assert seen[-1]["updatedAt"] == "2026-03-01T00:00:00Z"
    strictly = gql(client, shopify, shop, CUSTOMERS_PAGE, first=10, query=f"updated_at:>'{tied}'")
    assert [e["node"]["updatedAt"] for e in strictly["data"]["customers"]["edges"]] == [
        "2026-03-01T00:00:00Z"
    ]
    older = gql(client, shopify, shop, CUSTOMERS_PAGE, first=10, query="updated_at:<2026-01-01")
    assert len(older["data"]["customers"]["edges"]) == 1
    newest_first = gql(client, shopify, shop, CUSTOMERS_PAGE, first=10, reverse=True)
    times = [e["node"]["updatedAt"] for e in newest_first["data"]["customers"]["edges"]]
    assert times == sorted(times, reverse=True) and len(times) == 5


def test_ids_above_2_53_survive_and_default_sort_is_by_id(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    small = shop.add_customer(first_name="Small", last_name="Id", email="s@example.com", phone=None)
    big = 2**63 + 12345
    shop.add_customer(big, first_name="Big", last_name="Id", email=None, phone="+15550001")
    body = gql(
        client,
        shopify,
        shop,
        "{ customers(first: 5) { nodes { legacyResourceId defaultEmailAddress { emailAddress }"
        " defaultPhoneNumber { phoneNumber marketingState } displayName } } }",
    )
    nodes = body["data"]["customers"]["nodes"]
    assert [n["legacyResourceId"] for n in nodes] == [str(small["id"]), str(big)]
    assert nodes[1]["defaultEmailAddress"] is None
    assert nodes[1]["defaultPhoneNumber"] == {
        "phoneNumber": "+15550001",
        "marketingState": "NOT_SUBSCRIBED",
    }
    assert nodes[0]["defaultPhoneNumber"] is None


def test_updates_and_removals(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    first, second = customers_at(shop, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    changed = shop.update_customer(first["id"], first_name="Renamed")
    again = shop.update_customer(second["id"], last_name="Again")
    assert again["updated_at"] > changed["updated_at"] > first["updated_at"]
    shop.remove_customer(second["id"])
    since = changed["updated_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
    body = gql(
        client,
        shopify,
        shop,
        "query($q: String) { customers(first: 10, query: $q) { nodes { firstName updatedAt } } }",
        q=f"updated_at:>='{since}'",
    )
    assert body["data"]["customers"]["nodes"] == [{"firstName": "Renamed", "updatedAt": since}]


def test_orders_line_items_and_lookups(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    [customer] = customers_at(shop, "2026-01-01T00:00:00Z")
    order = shop.add_order(
        customer_id=customer["id"],
        name="#1001",
        email="c0@example.com",
        total_price="12.50",
        current_total_price="10.00",
        financial_status="PARTIALLY_REFUNDED",
        created_at="2026-01-01T10:00:00-05:00",
        updated_at="2026-01-02T10:00:00-05:00",
        line_items=[
            {
                "title": "Hat",
                "name": "Hat - Red",
                "quantity": 2,
                "sku": "HAT",
                "price": "5.00",
                "variant_id": 11,
                "product_id": 22,
            },
            {"title": "Pin", "quantity": 1, "sku": None, "price": "2.50"},
        ],
    )
    query = """
    query($id: ID!) {
      order(id: $id) {
        id legacyResourceId name currencyCode displayFinancialStatus displayFulfillmentStatus
        cancelledAt test closed createdAt updatedAt tags
        totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount } }
        currentTotalPriceSet { shopMoney { amount } }
        customer { id legacyResourceId numberOfOrders amountSpent { amount } }
        lineItems(first: 1) {
          edges { cursor node { id name title quantity currentQuantity sku
                  variant { id legacyResourceId } product { legacyResourceId }
                  originalUnitPriceSet { shopMoney { amount currencyCode } } } }
          pageInfo { hasNextPage endCursor }
        }
      }
    }"""
    body = gql(client, shopify, shop, query, id=f"gid://shopify/Order/{order['id']}")
    data = body["data"]["order"]
    assert data["createdAt"] == "2026-01-01T15:00:00Z"
    assert data["totalPriceSet"]["shopMoney"] == {"amount": "12.50", "currencyCode": "USD"}
    assert data["currentTotalPriceSet"]["shopMoney"]["amount"] == "10.00"
    assert data["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert data["customer"]["numberOfOrders"] == "1"
    assert data["customer"]["amountSpent"]["amount"] == "10.00"
    [edge] = data["lineItems"]["edges"]
    assert edge["node"]["variant"] == {
        "id": "gid://shopify/ProductVariant/11",
        "legacyResourceId": "11",
    }
    assert edge["node"]["originalUnitPriceSet"]["shopMoney"]["amount"] == "5.00"
    assert data["lineItems"]["pageInfo"]["hasNextPage"] is True
    nodes = gql(
        client,
        shopify,
        shop,
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }",
        ids=[data["id"], data["customer"]["id"], "gid://shopify/Order/1"],
    )
    assert [n and n["__typename"] for n in nodes["data"]["nodes"]] == ["Order", "Customer", None]
    bad = gql(client, shopify, shop, '{ node(id: "123") { id } }')
    assert "Invalid global id" in bad["errors"][0]["message"]


def test_page_size_limits(shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client) -> None:
    too_many = gql(client, shopify, shop, "{ customers(first: 251) { nodes { id } } }")
    assert too_many["errors"] and "data" not in too_many
    missing = gql(client, shopify, shop, "{ customers { nodes { id } } }")
    assert missing["errors"][0]["message"] == "you must provide one of first or last"


def test_generate_is_deterministic(shopify: ShopifyStandIn) -> None:
    # Its speed is the benchmark's to measure (bench/), not a test's.
    one, two = FakeShop("g1.myshopify.com"), FakeShop("g2.myshopify.com")
    one.generate(customers=1_000, orders=5_000, line_items=5, seed=7)
    two.generate(customers=1_000, orders=5_000, line_items=5, seed=7)
    assert one.orders[-1] == two.orders[-1] and len(one.orders) == 5_000


# -- cost and the bucket ------------------------------------------------------------------------


def test_cost_is_requested_then_refunded_to_actual(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    customers_at(shop, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z")
    query = (
        "{ customers(first: 10) { edges { node { id defaultEmailAddress { emailAddress } } } } }"
    )
    cost = gql(client, shopify, shop, query)["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 10 * 2
    assert cost["actualQueryCost"] == 2 + 3 * 2
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == 1000 and status["restoreRate"] == 100
    assert 990 <= status["currentlyAvailable"] <= 1000
    nested = "{ orders(first: 10) { nodes { id lineItems(first: 5) { nodes { id } } } } }"
    assert gql(client, shopify, shop, nested)["extensions"]["cost"]["requestedQueryCost"] == (
        2 + 10 * (1 + 2 + 5 * 1)
    )
    mutation = gql(client, shopify, shop, RUN_BULK, query="{ customers { edges { node { id } } } }")
    assert mutation["extensions"]["cost"]["requestedQueryCost"] == 10


def test_max_cost_exceeded_is_not_charged(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    query = "{ orders(first: 250) { nodes { id lineItems(first: 250) { nodes { id } } } } }"
    body = gql(client, shopify, shop, query)
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert body["extensions"]["cost"]["requestedQueryCost"] > 1000
    assert shop.bucket.available() == pytest.approx(1000)


def test_throttled_when_the_bucket_cannot_pay(
    shopify: ShopifyStandIn, client: httpx.Client
) -> None:
    shop = shopify.add_shop(
        f"t{uuid.uuid4().hex[:8]}.myshopify.com", token=TOKEN, bucket_size=50, restore_rate=5
    )
    shop.generate(customers=30, orders=0)
    query = "{ customers(first: 20) { nodes { id } } }"  # requested 22, actual 22
    gql(client, shopify, shop, query)
    gql(client, shopify, shop, query)
    third = gql(client, shopify, shop, "{ customers(first: 40) { nodes { id } } }")
    assert third["errors"] == [
        {
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/limits#rate-limits",
            },
        }
    ]
    cost = third["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 42 and cost["actualQueryCost"] is None
    assert cost["throttleStatus"]["currentlyAvailable"] < 42
    assert 0 <= shop.min_available_seen < 50


async def test_concurrent_clients_never_overdraw_the_bucket(shopify: ShopifyStandIn) -> None:
    shop = shopify.add_shop(
        f"c{uuid.uuid4().hex[:8]}.myshopify.com", token=TOKEN, bucket_size=200, restore_rate=50
    )
    shop.generate(customers=300, orders=0)
    query = "{ customers(first: 50) { nodes { id firstName } } }"  # 102 each, actual 102
    async with httpx.AsyncClient(headers={"X-Shopify-Access-Token": TOKEN}) as http:
        responses = await asyncio.gather(
            *(http.post(shopify.graphql_url(shop.domain), json={"query": query}) for _ in range(12))
        )
    codes = [
        (r.json().get("errors") or [{}])[0].get("extensions", {}).get("code") for r in responses
    ]
    assert "THROTTLED" in codes and None in codes
    assert shop.min_available_seen >= 0


# -- bulk operations ----------------------------------------------------------------------------


def run_bulk(
    client: httpx.Client,
    shopify: ShopifyStandIn,
    shop: FakeShop,
    query: str,
    version: str = "2026-04",
) -> dict[str, Any]:
    response = post(client, shopify, shop, RUN_BULK, {"query": query}, version)
    payload: dict[str, Any] = response.json()["data"]["bulkOperationRunQuery"]
    return payload


def poll_until_done(
    client: httpx.Client, shopify: ShopifyStandIn, shop: FakeShop, operation_id: str
) -> tuple[list[str], dict[str, Any]]:
    statuses = []
    for _ in range(200):
        operation = gql(client, shopify, shop, POLL_BULK, id=operation_id)["data"]["bulkOperation"]
        statuses.append(operation["status"])
        if operation["status"] not in ("CREATED", "RUNNING"):
            return statuses, operation
        time.sleep(0.02)
    raise AssertionError(f"bulk operation never finished: {statuses[-5:]}")


def read_jsonl(client: httpx.Client, url: str) -> list[dict[str, Any]]:
    response = client.get(url, headers={})
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines()]


def test_bulk_operation_lifecycle_and_jsonl(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    shop.generate(customers=20, orders=40, line_items=3, seed=3)
    shop.bulk_polls_to_complete = 2
    started = run_bulk(client, shopify, shop, ORDERS_BULK)
    assert started["userErrors"] == []
    operation = started["bulkOperation"]
    assert operation["status"] == "CREATED" and operation["type"] == "QUERY"
    statuses, done = poll_until_done(client, shopify, shop, operation["id"])
    assert statuses[:3] == ["CREATED", "RUNNING", "COMPLETED"]
    assert done["objectCount"] == "160" and done["rootObjectCount"] == "40"
    assert done["completedAt"] and done["query"] == ORDERS_BULK and done["errorCode"] is None
    assert done["url"].startswith(f"http://127.0.0.1:{shopify.port}/bulk-results/")
    lines = read_jsonl(httpx.Client(), done["url"])  # no token needed, like cloud storage
    assert len(lines) == 160 and int(done["fileSize"]) > 0
    orders = [line for line in lines if "__parentId" not in line]
    items = [line for line in lines if "__parentId" in line]
    assert len(orders) == 40 and len(items) == 120
    assert lines[1]["__parentId"] == lines[0]["id"]  # default: parent then its children
    assert set(orders[0]) == {"id", "name", "updatedAt", "totalPriceSet", "customer"}
    assert orders[0]["totalPriceSet"]["shopMoney"]["currencyCode"] == "USD"
    assert {item["__parentId"] for item in items} == {order["id"] for order in orders}
    assert shopify.requests[-1].kind == "bulk_result" and shopify.requests[-1].method == "GET"
    assert [op.id for op in shop.bulk_operations] == [operation["id"]]
    assert shop.bulk_operations[0].status == "COMPLETED"


def test_bulk_children_can_come_after_later_parents(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    shop.generate(customers=5, orders=10, line_items=2, seed=4)
    shop.bulk_shuffle_children = True
    started = run_bulk(client, shopify, shop, ORDERS_BULK)
    _, done = poll_until_done(client, shopify, shop, started["bulkOperation"]["id"])
    lines = read_jsonl(client, done["url"])
    position = {line["id"]: n for n, line in enumerate(lines)}
    late = [
        line
        for line in lines
        if "__parentId" in line and position[line["id"]] > position[line["__parentId"]] + 3
    ]
    assert late and len(lines) == 30


def test_bulk_concurrency_depends_on_api_version(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    query = "{ customers { edges { node { id } } } }"
    first = run_bulk(client, shopify, shop, query, version="2025-10")
    refused = run_bulk(client, shopify, shop, query, version="2025-10")
    assert refused["bulkOperation"] is None
    assert refused["userErrors"][0]["field"] is None
    assert refused["userErrors"][0]["message"] == (
        "A bulk query operation for this app and shop is already in progress: "
        f"{first['bulkOperation']['id']}."
    )
    for _ in range(4):
        assert run_bulk(client, shopify, shop, query)["userErrors"] == []
    assert (
        run_bulk(client, shopify, shop, query)["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
    )


def test_invalid_bulk_query_is_a_user_error(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    for query in ("{ orders { edges { node { nope } } } }", "{ shop { id } }", "{ orders {"):
        payload = run_bulk(client, shopify, shop, query)
        assert payload["bulkOperation"] is None
        assert payload["userErrors"][0]["field"] == ["query"]
    assert shop.bulk_operations == []


@pytest.mark.parametrize("partial", [True, False])
def test_failed_bulk_operation(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client, partial: bool
) -> None:
    shop.generate(customers=5, orders=10, line_items=1, seed=5)
    shop.fail_next_bulk(partial=partial)
    started = run_bulk(client, shopify, shop, ORDERS_BULK)
    _, done = poll_until_done(client, shopify, shop, started["bulkOperation"]["id"])
    assert done["status"] == "FAILED" and done["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert done["url"] is None
    if partial:
        assert len(read_jsonl(client, done["partialDataUrl"])) == 10
    else:
        assert done["partialDataUrl"] is None
    again = run_bulk(client, shopify, shop, ORDERS_BULK)
    assert (
        poll_until_done(client, shopify, shop, again["bulkOperation"]["id"])[1]["status"]
        == "COMPLETED"
    )


def test_bulk_result_of_a_large_shop(shopify: ShopifyStandIn, client: httpx.Client) -> None:
    shop = shopify.add_shop(f"l{uuid.uuid4().hex[:8]}.myshopify.com", token=TOKEN)
    shop.generate(customers=1_000, orders=5_000, line_items=5, seed=6)
    operation = run_bulk(client, shopify, shop, ORDERS_BULK)["bulkOperation"]
    _, done = poll_until_done(client, shopify, shop, operation["id"])
    assert done["objectCount"] == "30000"


# -- faults -------------------------------------------------------------------------------------


def test_status_faults_then_recovery(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    shopify.inject(Fault.status(500), times=2)
    shopify.inject(Fault.status(429, retry_after=1.0))
    codes = [post(client, shopify, shop, "{ shop { id } }").status_code for _ in range(3)]
    assert codes == [500, 500, 429]
    limited = shopify.requests[-1]
    assert limited.status == 429
    response = post(client, shopify, shop, "{ shop { id } }")
    assert response.status_code == 200 and response.json()["data"]["shop"]["id"]
    shopify.inject(Fault.status(429, retry_after=2.5))
    limited_response = post(client, shopify, shop, "{ shop { id } }")
    assert limited_response.headers["Retry-After"] == "2.5"
    assert "errors" in limited_response.json()


def test_slow_drop_and_throttled_faults(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    shopify.inject(Fault.slow(0.5))
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            shopify.graphql_url(shop.domain), json={"query": "{ shop { id } }"}, timeout=0.2
        )
    shopify.inject(Fault.drop())
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, shopify, shop, "{ shop { id } }")
    assert shopify.requests[-1].status is None
    shopify.inject(Fault.throttled())
    body = gql(client, shopify, shop, "{ customers(first: 5) { nodes { id } } }")
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["requestedQueryCost"] == 7
    assert post(client, shopify, shop, "{ shop { id } }").status_code == 200


def test_faults_can_target_the_bulk_download(
    shopify: ShopifyStandIn, shop: FakeShop, client: httpx.Client
) -> None:
    shop.generate(customers=3, orders=3, line_items=1, seed=8)
    operation = run_bulk(client, shopify, shop, ORDERS_BULK)["bulkOperation"]
    _, done = poll_until_done(client, shopify, shop, operation["id"])
    shopify.inject(Fault.status(503), times=1, kind="bulk_result")
    assert client.get(done["url"]).status_code == 503
    assert client.get(done["url"]).status_code == 200
    downloads = [r for r in shopify.requests if r.kind == "bulk_result"]
    assert [r.status for r in downloads[-2:]] == [503, 200]


# -- as a separate process ----------------------------------------------------------------------


def test_runs_as_a_process(standin_process: subprocess.Popen[str]) -> None:
    assert standin_process.stdout is not None
    line = standin_process.stdout.readline().strip()
    assert line.startswith("READY http://127.0.0.1:") and line.endswith("/{shop}")
    url = line.split()[1].format(shop="bench.myshopify.com") + "/admin/api/2026-04/graphql.json"
    response = httpx.post(
        url,
        json={"query": "{ orders(first: 50) { nodes { id } } }"},
        headers={"X-Shopify-Access-Token": "tok"},
    )
    assert len(response.json()["data"]["orders"]["nodes"]) == 20
    standin_process.send_signal(signal.SIGTERM)
    assert standin_process.wait(timeout=5) == 0
