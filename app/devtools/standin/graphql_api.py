"""Shopify's Admin schema, executed with graphql-core over a FakeShop.

The schema is Shopify's own SDL, so a query the stand-in accepts is a query
Shopify accepts (and a deprecated field is caught here, not in production).
Resolvers take (source, args, ctx) so the bulk writer can reuse them without
running graphql-core's executor once per node.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    execute,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_abstract_type,
    is_list_type,
    is_non_null_type,
    parse,
    validate,
    validate_schema,
    visit,
)
from graphql.execution.values import get_variable_values

from . import cost
from .cursors import CursorError
from .data import FakeShop, Page, Record, gid, parse_gid, parse_search

SCHEMA_FILE = (
    Path(__file__).resolve().parents[3]
    / "tests"
    / "fixtures"
    / "shopify"
    / "admin-2026-04.graphql.gz"
)
MAX_PAGE = 250
_schema_lock = threading.Lock()

Resolver = Callable[[Any, dict[str, Any], "Context"], Any]


@dataclass
class Context:
    """What resolvers need beyond their source object."""

    shop: FakeShop
    api_version: str
    polled: set[int] = field(default_factory=set)  # bulk ops already advanced by this request


# -- schema -------------------------------------------------------------------------------------


def schema() -> GraphQLSchema:
    """Shopify's schema with Shopify's scalar formats, built once per process (~3 s)."""
    with _schema_lock:
        return _build_schema()


@cache
def _build_schema() -> GraphQLSchema:
    sdl = gzip.decompress(SCHEMA_FILE.read_bytes()).decode()
    built = build_schema(sdl, assume_valid_sdl=True)
    for name, serializer in SCALARS.items():
        scalar = built.get_type(name)
        if isinstance(scalar, GraphQLScalarType):
            scalar.serialize = serializer  # type: ignore[method-assign,assignment]
    # Validated here, once: graphql-core validates a schema at its first query
    # and caches the result, but concurrent first queries (a fleet of shops
    # syncing side by side) would each validate the whole schema again.
    validate_schema(built)
    return built


def serialize_datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def serialize_decimal(value: Any) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


SCALARS: dict[str, Callable[[Any], Any]] = {
    "DateTime": serialize_datetime,
    "Decimal": serialize_decimal,
    "Money": serialize_decimal,
    "UnsignedInt64": str,
    "URL": str,
}


# -- request handling ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """A GraphQL answer: the body Shopify would send (always HTTP 200)."""

    body: dict[str, Any]
    charged: bool = False


def error(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


def format_error(err: GraphQLError, default_code: str) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(err.formatted)
    extensions = dict(formatted.get("extensions") or {})
    extensions.setdefault("code", _code_for(err.message, default_code))
    formatted["extensions"] = extensions
    return formatted


_CODES = (
    ("Cannot query field", "undefinedField"),
    ("Unknown argument", "argumentNotAccepted"),
    ("Unknown type", "undefinedType"),
    ("Variable", "variableMismatch"),
    ("Field '", "missingRequiredArguments"),
)


def _code_for(message: str, default: str) -> str:
    return next((code for prefix, code in _CODES if message.startswith(prefix)), default)


def record_deprecated(document: DocumentNode, shop: FakeShop) -> None:
    """Add every @deprecated field the document selects to shop.deprecated_fields_used."""
    type_info = TypeInfo(schema())
    used = shop.deprecated_fields_used

    class Collector(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            definition = type_info.get_field_def()
            parent = type_info.get_parent_type()
            if definition is not None and parent is not None and definition.deprecation_reason:
                used.add(f"{parent.name}.{node.name.value}")

    visit(document, TypeInfoVisitor(type_info, Collector()))


def parse_and_validate(query: str, shop: FakeShop) -> DocumentNode | list[dict[str, Any]]:
    """The parsed document, or Shopify-shaped errors; deprecated fields are recorded either way."""
    try:
        document, errors = _parsed_and_validated(query)
    except GraphQLError as err:
        return [format_error(err, "PARSE_ERROR")]
    record_deprecated(document, shop)
    if errors:
        return [format_error(err, "GRAPHQL_VALIDATION_FAILED") for err in errors]
    return document


@lru_cache(maxsize=256)
def _parsed_and_validated(query: str) -> tuple[DocumentNode, tuple[GraphQLError, ...]]:
    """Parsing and validating a query text, once: the sync sends the same few texts
    again and again (a fleet of thousands of shops would otherwise spend the
    stand-in's CPU on it)."""
    document = parse(query)
    return document, tuple(validate(schema(), document))


def handle(shop: FakeShop, api_version: str, payload: dict[str, Any]) -> Outcome:
    """Validate, price, charge and execute one GraphQL request, as Shopify does."""
    query = payload.get("query")
    variables = payload.get("variables") or {}
    if not isinstance(query, str) or not query.strip():
        return Outcome({"errors": [error("No query string was present", "BAD_REQUEST")]})
    if not isinstance(variables, dict):
        return Outcome({"errors": [error("Variables must be an object", "BAD_REQUEST")]})
    with shop.lock:
        shop.queries.append((query, payload.get("variables")))
    document = parse_and_validate(query, shop)
    if isinstance(document, list):
        return Outcome({"errors": document})
    operation = get_operation_ast(document, payload.get("operationName"))
    if operation is None:
        message = "An operation name is required when the document has several operations"
        return Outcome({"errors": [error(message, "OPERATION_NOT_FOUND")]})
    coerced = get_variable_values(schema(), operation.variable_definitions or (), variables)
    if isinstance(coerced, list):
        return Outcome({"errors": [format_error(err, "variableMismatch") for err in coerced]})
    priced = cost.requested_cost(schema(), document, operation, coerced)
    if priced.errors:
        return Outcome({"errors": priced.errors})
    if priced.cost > cost.MAX_QUERY_COST:
        return Outcome(max_cost_exceeded(shop, priced.cost))
    return _charge_and_execute(shop, api_version, document, operation, coerced, priced.cost)


def _charge_and_execute(
    shop: FakeShop,
    api_version: str,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any],
    requested: int,
) -> Outcome:
    with shop.lock:
        if not shop.bucket.try_take(requested):
            shop.throttled_answers += 1
            return Outcome(throttled_body(shop, requested))
        shop.min_available_seen = min(shop.min_available_seen, shop.bucket.available())
        result = execute(
            schema(),
            document,
            context_value=Context(shop, api_version),
            variable_values=variables,
            operation_name=operation.name.value if operation.name else None,
            field_resolver=resolve_field,
            type_resolver=resolve_type,
        )
        assert not hasattr(result, "__await__")
        data = result.data
        actual = cost.actual_cost(schema(), document, operation, data)
        shop.bucket.refund(max(0, requested - actual))
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [format_error(e, "INTERNAL") for e in result.errors]
        body["data"] = data
        body["extensions"] = {"cost": cost_extension(shop, requested, actual)}
        return Outcome(body, charged=True)


def cost_extension(shop: FakeShop, requested: int | None, actual: int | None) -> dict[str, Any]:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {
            "maximumAvailable": shop.bucket.maximum,
            "currentlyAvailable": int(shop.bucket.available()),
            "restoreRate": shop.bucket.restore_rate,
        },
    }


def throttled_body(shop: FakeShop, requested: int | None) -> dict[str, Any]:
    """Shopify's answer when the bucket cannot pay for the query (nothing is charged)."""
    documentation = "https://shopify.dev/api/usage/limits#rate-limits"
    return {
        "errors": [error("Throttled", "THROTTLED", documentation=documentation)],
        "extensions": {"cost": cost_extension(shop, requested, None)},
    }


def max_cost_exceeded(shop: FakeShop, requested: int) -> dict[str, Any]:
    message = (
        f"Query cost is {requested}, which exceeds the single query max cost limit "
        f"({cost.MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits "
        "for more information on how the cost of a query is calculated.\n\nTo query larger "
        "amounts of data with fewer limits, bulk operations should be used instead."
    )
    return {
        "errors": [
            error(message, "MAX_COST_EXCEEDED", cost=requested, maxCost=cost.MAX_QUERY_COST)
        ],
        "extensions": {"cost": cost_extension(shop, requested, None)},
    }


def requested_cost_of(query: str, variables: dict[str, Any] | None = None) -> int | None:
    """Requested cost of a query text, None if it does not validate (for injected faults)."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    if validate(schema(), document):
        return None
    operation = get_operation_ast(document)
    if operation is None:
        return None
    coerced = get_variable_values(schema(), operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return None
    return cost.requested_cost(schema(), document, operation, coerced).cost


# -- resolution ---------------------------------------------------------------------------------


_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


@cache
def snake(name: str) -> str:
    return _SNAKE.sub("_", name).lower()


def fallback(source: Any, name: str) -> Any:
    """A camelCase key, else the snake_case key or attribute (records and dataclasses)."""
    if isinstance(source, dict):
        if name in source:
            return source[name]
        return source.get(snake(name))
    return getattr(source, snake(name), None)


def resolver_for(type_name: str, field_name: str) -> Resolver | None:
    return RESOLVERS.get(type_name, {}).get(field_name)


def resolve_value(
    type_name: str,
    field_name: str,
    return_type: Any,
    source: Any,
    args: dict[str, Any],
    ctx: Context,
) -> Any:
    """A field's value; never None for a non-null field (Shopify never sends one)."""
    resolver = resolver_for(type_name, field_name)
    value = resolver(source, args, ctx) if resolver else fallback(source, field_name)
    if value is None and is_non_null_type(return_type):
        return default_for(return_type)
    return value


def resolve_field(source: Any, info: Any, **args: Any) -> Any:
    return resolve_value(
        info.parent_type.name, info.field_name, info.return_type, source, args, info.context
    )


def resolve_type(value: Any, info: Any, abstract_type: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("__typename")
    return type(value).__name__


def default_for(type_: Any) -> Any:
    """A plausible value for a non-null field the fake data does not hold."""
    inner = get_nullable_type(type_)
    if is_list_type(inner):
        return []
    named = get_named_type(inner)
    if isinstance(named, GraphQLEnumType):
        return next(iter(named.values))
    if isinstance(named, GraphQLScalarType):
        return SCALAR_DEFAULTS.get(named.name, "")
    if is_abstract_type(named):
        possible = schema().get_possible_types(named)
        return {"__typename": possible[0].name} if possible else {}
    return {}


SCALAR_DEFAULTS: dict[str, Any] = {
    "Int": 0,
    "Float": 0.0,
    "Boolean": False,
    "DateTime": datetime(1970, 1, 1, tzinfo=UTC),
    "Decimal": Decimal("0.0"),
    "Money": Decimal("0.0"),
    "UnsignedInt64": 0,
    "URL": "https://example.invalid/",
    "ID": "gid://shopify/Unknown/0",
}


# -- connections --------------------------------------------------------------------------------


def connection(page: Page) -> dict[str, Any]:
    return {
        "edges": [
            {"cursor": cursor, "node": node}
            for cursor, node in zip(page.cursors, page.items, strict=True)
        ],
        "nodes": page.items,
        "pageInfo": {
            "hasNextPage": page.has_next_page,
            "hasPreviousPage": page.has_previous_page,
            "startCursor": page.cursors[0] if page.cursors else None,
            "endCursor": page.cursors[-1] if page.cursors else None,
        },
    }


def page_of(
    shop: FakeShop, kind: str, args: dict[str, Any], records: list[Record] | None = None
) -> dict[str, Any]:
    try:
        page = shop.page(
            kind,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
            sort_key=args.get("sortKey") or "ID",
            terms=parse_search(args.get("query")),
            records=records,
        )
    except CursorError as err:
        raise GraphQLError(str(err), extensions={"code": "BAD_REQUEST"}) from err
    return connection(page)


def require_scope(ctx: Context, scope: str, field_name: str) -> None:
    """Shopify's ACCESS_DENIED error when the app lacks the scope a field needs."""
    if scope not in ctx.shop.scopes:
        raise GraphQLError(
            f"Access denied for {field_name} field. Required access: `{scope}` access scope.",
            extensions={
                "code": "ACCESS_DENIED",
                "documentation": "https://shopify.dev/api/usage/access-scopes",
                "requiredAccess": f"`{scope}` access scope.",
            },
        )


def root_customers(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    require_scope(ctx, "read_customers", "customers")
    with ctx.shop.lock:
        return page_of(ctx.shop, "customer", args)


def root_orders(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    require_scope(ctx, "read_orders", "orders")
    with ctx.shop.lock:
        return page_of(ctx.shop, "order", args)


def find_node(value: str, ctx: Context) -> Any:
    """The object a GID names (None if absent); Shopify's coercion error if it is no GID."""
    parsed = parse_gid(value)
    if parsed is None:
        raise GraphQLError(
            f"Invalid global id '{value}'",
            extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
        )
    type_name, number = parsed
    shop = ctx.shop
    if type_name == "Customer" and "read_customers" in shop.scopes:
        return shop.get_customer(number)
    if type_name == "Order" and "read_orders" in shop.scopes:
        return shop.get_order(number)
    if type_name == "LineItem" and "read_orders" in shop.scopes:
        return shop.get_line_item(number)
    if type_name == "WebhookSubscription":
        return next((s for s in shop.subscriptions if s["number"] == number), None)
    if type_name == "BulkOperation":
        operation = shop.bulk_operation(number)
        if operation is not None:
            from .bulk import poll

            poll(operation, ctx)
        return operation
    return None


def typed_node(value: str, ctx: Context, type_name: str) -> Any:
    found = find_node(value, ctx)
    return found if found is not None and resolve_type(found, None, None) == type_name else None


def current_bulk_operation(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    kind = args.get("type") or "QUERY"
    operations = [op for op in ctx.shop.bulk_operations if op.type == kind]
    if not operations:
        return None
    from .bulk import poll

    poll(operations[-1], ctx)
    return operations[-1]


def run_bulk_query(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    from .bulk import start_bulk_query

    return start_bulk_query(args["query"], ctx)


def shop_object(_: Any, __: dict[str, Any], ctx: Context) -> dict[str, Any]:
    shop = ctx.shop
    return {
        "__typename": "Shop",
        "id": gid("Shop", 1),
        "name": shop.name,
        "myshopifyDomain": shop.domain,
        "email": f"owner@{shop.domain}",
        "contactEmail": f"owner@{shop.domain}",
        "currencyCode": shop.currency,
        "ianaTimezone": "Etc/UTC",
        "timezoneAbbreviation": "UTC",
        "url": f"https://{shop.domain}",
    }


# -- webhook subscriptions ----------------------------------------------------------------------

# What Shopify accepts as a subscription's address: HTTPS, Pub/Sub or EventBridge; and,
# unlike Shopify, plain http on this machine, so a local service can be the app.
_SUBSCRIPTION_URI = re.compile(
    r"^(https://[^/\s:]+(:\d+)?(/\S*)?|http://(127\.0\.0\.1|localhost)(:\d+)?(/\S*)?"
    r"|pubsub://\S+|arn:aws:events:\S+)$"
)


def root_webhook_subscriptions(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    """Shopify's connection, sorted by creation (id), filtered by `topics` and `uri`."""
    from .cursors import decode_cursor, encode_cursor

    with ctx.shop.lock:
        items = list(ctx.shop.subscriptions)
    if args.get("topics"):
        items = [item for item in items if item["topic"] in args["topics"]]
    if args.get("uri"):
        items = [item for item in items if item["uri"] == args["uri"]]
    if args.get("reverse"):
        items.reverse()
    numbers = [item["number"] for item in items]
    try:
        after = decode_cursor(args["after"], "i")[1] if args.get("after") else None
        before = decode_cursor(args["before"], "i")[1] if args.get("before") else None
    except CursorError as err:
        raise GraphQLError(str(err), extensions={"code": "BAD_REQUEST"}) from err
    low = numbers.index(after) + 1 if after in numbers else 0
    high = numbers.index(before) if before in numbers else len(items)
    window = items[low:high]
    has_next, has_previous = high < len(items), low > 0
    if args.get("first") is not None:
        has_next = has_next or len(window) > args["first"]
        window = window[: args["first"]]
    if args.get("last") is not None:
        has_previous = has_previous or len(window) > args["last"]
        window = window[max(0, len(window) - args["last"]) :]
    cursors = [encode_cursor((item["number"], item["number"])) for item in window]
    return connection(Page(window, cursors, has_next, has_previous))


def create_webhook_subscription(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    """webhookSubscriptionCreate: userErrors for a blank, invalid or duplicate address."""
    uri = (args.get("webhookSubscription") or {}).get("uri")
    field_path = ["webhookSubscription", "callbackUrl"]
    if not uri:
        return {
            "webhookSubscription": None,
            "userErrors": [user_error(field_path, "Address can't be blank")],
        }
    if not _SUBSCRIPTION_URI.match(uri):
        return {
            "webhookSubscription": None,
            "userErrors": [user_error(field_path, "Address is invalid")],
        }
    with ctx.shop.lock:
        if any(s["topic"] == args["topic"] and s["uri"] == uri for s in ctx.shop.subscriptions):
            taken = user_error(field_path, "Address for this topic has already been taken")
            return {"webhookSubscription": None, "userErrors": [taken]}
        created = ctx.shop.add_subscription(args["topic"], uri, ctx.api_version)
    return {"webhookSubscription": created, "userErrors": []}


def user_error(field_path: list[str], message: str) -> dict[str, Any]:
    return {"__typename": "UserError", "field": field_path, "message": message}


# -- object fields ------------------------------------------------------------------------------


def money(amount: Any, currency: str) -> dict[str, Any]:
    return {"amount": amount if amount is not None else Decimal("0.0"), "currencyCode": currency}


def money_bag(amount: Any, currency: str) -> dict[str, Any]:
    value = money(amount, currency)
    return {"shopMoney": value, "presentmentMoney": value}


def display_name(customer: Record) -> str:
    names = [customer.get("first_name"), customer.get("last_name")]
    full = " ".join(name for name in names if name)
    return full or customer.get("email") or customer.get("phone") or ""


def email_address(customer: Record, _: dict[str, Any], __: Context) -> Any:
    if not customer.get("email"):
        return None
    return {
        "emailAddress": customer["email"],
        "marketingState": customer.get("email_marketing_state") or "NOT_SUBSCRIBED",
        "marketingOptInLevel": customer.get("email_opt_in_level"),
        "marketingUpdatedAt": customer.get("email_marketing_updated_at"),
        "validFormat": True,
        "openTrackingLevel": "UNKNOWN",
    }


def phone_number(customer: Record, _: dict[str, Any], __: Context) -> Any:
    if not customer.get("phone"):
        return None
    return {
        "phoneNumber": customer["phone"],
        "marketingState": customer.get("sms_marketing_state") or "NOT_SUBSCRIBED",
        "marketingOptInLevel": customer.get("sms_opt_in_level"),
        "marketingUpdatedAt": customer.get("sms_marketing_updated_at"),
    }


def email_consent(customer: Record, _: dict[str, Any], __: Context) -> Any:
    if not customer.get("email"):
        return None
    return {
        "marketingState": customer.get("email_marketing_state") or "NOT_SUBSCRIBED",
        "marketingOptInLevel": customer.get("email_opt_in_level"),
        "consentUpdatedAt": customer.get("email_marketing_updated_at"),
    }


def sms_consent(customer: Record, _: dict[str, Any], __: Context) -> Any:
    if not customer.get("phone"):
        return None
    return {
        "marketingState": customer.get("sms_marketing_state") or "NOT_SUBSCRIBED",
        "marketingOptInLevel": customer.get("sms_opt_in_level"),
        "consentUpdatedAt": customer.get("sms_marketing_updated_at"),
        "consentCollectedFrom": "OTHER",
    }


def amount_spent(customer: Record, _: dict[str, Any], ctx: Context) -> Any:
    orders = ctx.shop.orders_of(customer["id"])
    total = sum((o["current_total_price"] for o in orders if not o["cancelled_at"]), Decimal(0))
    return money(total, ctx.shop.currency)


def customer_orders(customer: Record, args: dict[str, Any], ctx: Context) -> Any:
    return page_of(ctx.shop, "order", args, records=ctx.shop.orders_of(customer["id"]))


def order_line_items(order: Record, args: dict[str, Any], ctx: Context) -> Any:
    return page_of(ctx.shop, "line_item", args, records=order["line_items"])


def reference(type_name: str, number: int | None) -> dict[str, Any] | None:
    if number is None:
        return None
    return {"__typename": type_name, "id": gid(type_name, number), "legacyResourceId": number}


def _gid_of(type_name: str) -> Resolver:
    return lambda record, _, __: gid(type_name, record["id"])


def _key(name: str) -> Resolver:
    return lambda record, _, __: record.get(name)


def _legacy(record: Any, _: dict[str, Any], __: Context) -> Any:
    return record["id"]


RESOLVERS: dict[str, dict[str, Resolver]] = {
    "QueryRoot": {
        "customers": root_customers,
        "orders": root_orders,
        "customer": lambda _, args, ctx: typed_node(args["id"], ctx, "Customer"),
        "order": lambda _, args, ctx: typed_node(args["id"], ctx, "Order"),
        "node": lambda _, args, ctx: find_node(args["id"], ctx),
        "nodes": lambda _, args, ctx: [find_node(value, ctx) for value in args["ids"]],
        "bulkOperation": lambda _, args, ctx: typed_node(args["id"], ctx, "BulkOperation"),
        "currentBulkOperation": current_bulk_operation,
        "shop": shop_object,
        "webhookSubscriptions": root_webhook_subscriptions,
        "webhookSubscription": lambda _, args, ctx: typed_node(
            args["id"], ctx, "WebhookSubscription"
        ),
    },
    "Mutation": {
        "bulkOperationRunQuery": run_bulk_query,
        "webhookSubscriptionCreate": create_webhook_subscription,
    },
    "Customer": {
        "id": _gid_of("Customer"),
        "legacyResourceId": _legacy,
        "displayName": lambda c, _, __: display_name(c),
        "defaultEmailAddress": email_address,
        "defaultPhoneNumber": phone_number,
        "emailMarketingConsent": email_consent,
        "smsMarketingConsent": sms_consent,
        "numberOfOrders": lambda c, _, ctx: len(ctx.shop.orders_of(c["id"])),
        "amountSpent": amount_spent,
        "orders": customer_orders,
        "validEmailAddress": lambda c, _, __: bool(c.get("email")),
        "locale": lambda c, _, __: c.get("locale") or "en",
    },
    "Order": {
        "id": _gid_of("Order"),
        "legacyResourceId": _legacy,
        "currencyCode": _key("currency"),
        "presentmentCurrencyCode": _key("currency"),
        "totalPriceSet": lambda o, _, __: money_bag(o["total_price"], o["currency"]),
        "currentTotalPriceSet": lambda o, _, __: money_bag(o["current_total_price"], o["currency"]),
        "totalPrice": _key("total_price"),
        "displayFinancialStatus": _key("financial_status"),
        "displayFulfillmentStatus": _key("fulfillment_status"),
        "processedAt": _key("created_at"),
        "customer": lambda o, _, ctx: (
            ctx.shop.get_customer(o["customer_id"]) if o.get("customer_id") is not None else None
        ),
        "lineItems": order_line_items,
    },
    "LineItem": {
        "id": _gid_of("LineItem"),
        "variant": lambda li, _, __: reference("ProductVariant", li.get("variant_id")),
        "product": lambda li, _, __: reference("Product", li.get("product_id")),
        "originalUnitPriceSet": lambda li, _, ctx: money_bag(li.get("price"), ctx.shop.currency),
        "discountedUnitPriceSet": lambda li, _, ctx: money_bag(li.get("price"), ctx.shop.currency),
        "originalUnitPrice": _key("price"),
    },
}
