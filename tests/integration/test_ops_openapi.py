"""The OpenAPI document at /schema/openapi.json: every route, the admin ones behind
the bearer scheme, and examples that look like what the service really answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.support import shopify
from tests.support.ops import ADMIN

ADMIN_ROUTES = {
    ("get", "/events"),
    ("get", "/events/{event_id}"),
    ("post", "/replay"),
    ("get", "/shops/{shop}/customers/{shopify_id}/export"),
    ("get", "/shops/{shop}/customer-events"),
}
PUBLIC_ROUTES = {
    ("post", "/webhooks/shopify"),
    ("get", "/health"),
    ("get", "/health/ready"),
}
# Every endpoint documents its responses with examples.
DOCUMENTED_ROUTES = ADMIN_ROUTES | PUBLIC_ROUTES


@pytest.fixture
async def schema(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][path][method]
    return found


def examples(response: dict[str, Any]) -> list[Any]:
    return [
        example["value"]
        for media in response.get("content", {}).values()
        for example in (media.get("examples") or {}).values()
    ]


async def test_schema_lists_every_route(schema: dict[str, Any]) -> None:
    routes = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert routes >= ADMIN_ROUTES | PUBLIC_ROUTES
    assert schema["openapi"].startswith("3.")
    for method, path in ADMIN_ROUTES | PUBLIC_ROUTES:
        assert operation(schema, method, path).get("summary"), (method, path)


async def test_admin_routes_declare_the_bearer_scheme(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"].lower() == "bearer"
    for method, path in ADMIN_ROUTES:
        assert {"bearer": []} in operation(schema, method, path).get("security", []), path
        responses = operation(schema, method, path)["responses"]
        assert {"200", "401", "403"} <= set(responses), (path, set(responses))
    for method, path in PUBLIC_ROUTES:
        assert not operation(schema, method, path).get("security"), path


async def test_events_parameters_are_documented(schema: dict[str, Any]) -> None:
    names = {p["name"] for p in operation(schema, "get", "/events")["parameters"]}
    assert names >= {
        "shop",
        "topic",
        "status",
        "since",
        "until",
        "webhook_id",
        "event_id",
        "limit",
        "cursor",
        "include_payload",
    }


async def test_replay_request_body_has_an_example_and_no_payload(schema: dict[str, Any]) -> None:
    body = operation(schema, "post", "/replay")["requestBody"]
    media = body["content"]["application/json"]
    # Litestar puts a body's examples on its schema (OpenAPI 3.1 style).
    found = list(media["schema"].get("examples", [])) + [
        example["value"] for example in (media.get("examples") or {}).values()
    ]
    assert found, media
    assert set(found[0]) & {"ids", "webhook_ids", "shop", "topic", "status", "since", "until"}

    reference = (
        media["schema"]["allOf"][0]["$ref"]
        if "allOf" in media["schema"]
        else media["schema"]["$ref"]
    )
    model = schema["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    properties = set(model["properties"])
    assert properties >= {
        "ids",
        "webhook_ids",
        "shop",
        "topic",
        "status",
        "since",
        "until",
        "dry_run",
        "limit",
        "cursor",
    }
    assert "payload" not in properties


async def test_operations_endpoints_document_responses_with_examples(
    schema: dict[str, Any],
) -> None:
    for method, path in DOCUMENTED_ROUTES:
        responses = operation(schema, method, path)["responses"]
        assert examples(responses["200"]), (method, path)
    ready = operation(schema, "get", "/health/ready")["responses"]
    assert examples(ready["503"])
    webhook = operation(schema, "post", "/webhooks/shopify")["responses"]
    for status in ("400", "401", "413", "503"):
        assert examples(webhook[status]), status
    for method, path in ADMIN_ROUTES:
        responses = operation(schema, method, path)["responses"]
        assert examples(responses["401"]) and examples(responses["403"]), path


async def test_documented_examples_match_real_answers(
    schema: dict[str, Any], client: httpx.AsyncClient, db: Database
) -> None:
    await shopify.post(client, "orders/create", {"id": "x"}, webhook_id="schema-failed")

    # 401: the documented body is the real one.
    documented = examples(operation(schema, "get", "/events")["responses"]["401"])[0]
    real = await client.get("/events")
    assert real.status_code == 401
    assert real.json()["detail"] == documented["detail"]

    # The documented replay answer has the real answer's fields.
    documented = examples(operation(schema, "post", "/replay")["responses"]["200"])[0]
    real = await client.post("/replay", json={"status": "failed", "dry_run": True}, headers=ADMIN)
    assert real.status_code == 200
    assert set(documented) == set(real.json())

    documented = examples(operation(schema, "get", "/events")["responses"]["200"])[0]
    real = await client.get("/events", headers=ADMIN)
    assert set(documented) == set(real.json())
    assert set(documented["events"][0]) == set(real.json()["events"][0])

    # The documented replay request is one the service accepts.
    example = operation(schema, "post", "/replay")["requestBody"]["content"]["application/json"]
    request = {**example["schema"]["examples"][0], "dry_run": True}
    assert (await client.post("/replay", json=request, headers=ADMIN)).status_code == 200

    documented = examples(operation(schema, "get", "/health/ready")["responses"]["200"])[0]
    assert (await client.get("/health/ready")).json() == documented
    documented = examples(operation(schema, "get", "/health")["responses"]["200"])[0]
    assert (await client.get("/health")).json() == documented

    webhook = operation(schema, "post", "/webhooks/shopify")["responses"]
    unsigned = await client.post("/webhooks/shopify", content=b"{}")
    assert unsigned.json() == examples(webhook["401"])[0]
    answer = await shopify.post(client, "orders/create", shopify.order(4242, customer_id=4243))
    assert set(answer.json()) == set(examples(webhook["200"])[0])


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A schema node with `$ref`s (also inside oneOf/allOf) followed."""
    if "$ref" in node:
        found: dict[str, Any] = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        return found
    for key in ("oneOf", "allOf", "anyOf"):
        for option in node.get(key, []):
            if "$ref" in option:
                return resolve(schema, option)
    return node


async def test_every_answer_is_typed(schema: dict[str, Any]) -> None:
    """Every JSON answer of every operation names its properties: no free-form objects."""
    untyped = []
    for path, operations in schema["paths"].items():
        for method, found in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            for status, response in found["responses"].items():
                for media_type, media in response.get("content", {}).items():
                    body = resolve(schema, media.get("schema", {}))
                    if media_type == "application/json" and not body.get("properties"):
                        untyped.append((method, path, status))
    assert not untyped, untyped


async def test_errors_share_one_body(schema: dict[str, Any]) -> None:
    for path, operations in schema["paths"].items():
        if path == "/health/ready":
            continue  # its 503 is the probe's answer: which part is not ready
        for method, found in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            for status, response in found["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                media = response.get("content", {}).get("application/json", {})
                body = resolve(schema, media.get("schema", {}))
                assert {"status_code", "detail"} <= set(body.get("properties", {})), (
                    method,
                    path,
                    status,
                )


async def test_metrics_are_served_outside_the_schema(
    schema: dict[str, Any], client: httpx.AsyncClient
) -> None:
    assert "/metrics" not in schema["paths"]
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "# TYPE shopify_ingest_deliveries_total counter" in response.text


async def test_schema_ui_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
