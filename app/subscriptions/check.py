"""Check (and with `fix`, complete) a shop's webhook subscriptions through the Admin API.

The shop's `webhookSubscriptions` are compared with the topics the service
needs at PUBLIC_URL + /webhooks/shopify:

- missing: a needed topic without a subscription at our address;
- misdirected: a subscription of a needed topic at another address;
- extra: a subscription of a topic the service does not need.

`fix` creates the missing ones with `webhookSubscriptionCreate` and nothing
else: it never deletes or changes a subscription (Shopify's advice: create
only what is missing, then backfill the gap with a sync). Each check's result
is kept in subscription_checks, one row per shop, for GET /shops/silent and
/metrics; so is a failed check, with its reason. Shopify's answers are read
into typed structs: one of another shape, or holding text PostgreSQL cannot
store, is Shopify's fault (InvalidAnswer: 502, exit 1), never the request's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import msgspec

from app.access.credentials import (
    CredentialsKeyMissing,
    CredentialsUnusable,
    usable_credentials,
)
from app.access.tokens import TokenRefreshFailed, TokenService
from app.config import Settings
from app.db.database import Database
from app.shopify.client import AdminClient, answer_part
from app.shopify.errors import InvalidAnswer, ShopifyError
from app.shopify.nodes import PageInfo
from app.subscriptions.queries import PAGE_SIZE, WEBHOOK_SUBSCRIPTION_CREATE, WEBHOOK_SUBSCRIPTIONS
from app.subscriptions.topics import SUBSCRIBABLE, enum_name, needed_topics

log = logging.getLogger("app.subscriptions")

WEBHOOK_PATH = "/webhooks/shopify"
# A safety net against a connection that never ends (10,000 subscriptions).
MAX_PAGES = 100
LIST_COST = 2 + PAGE_SIZE
CREATE_COST = 10


class NotConfigured(Exception):
    """PUBLIC_URL is not set: there is no address to compare subscriptions with."""


class CheckRefused(Exception):
    """The shop cannot be checked: no usable Admin API credentials.

    `key_missing`: its tokens are stored but TOKEN_ENCRYPTION_KEY is not set.
    """

    def __init__(self, reason: str, *, key_missing: bool = False) -> None:
        super().__init__(reason)
        self.key_missing = key_missing


class SubscriptionOut(msgspec.Struct):
    id: str
    topic: str  # the Admin API's enum, e.g. ORDERS_CREATE
    uri: str


class SubscriptionNode(msgspec.Struct):
    id: str
    topic: str
    uri: str | None = None


class SubscriptionsPage(msgspec.Struct, rename="camel"):
    nodes: list[SubscriptionNode]
    page_info: PageInfo


class SubscriptionsData(msgspec.Struct, rename="camel"):
    webhook_subscriptions: SubscriptionsPage


class UserError(msgspec.Struct):
    message: str | None = None


class CreatePayload(msgspec.Struct, rename="camel"):
    webhook_subscription: SubscriptionNode | None = None
    user_errors: list[UserError] = []


class CreateData(msgspec.Struct, rename="camel"):
    webhook_subscription_create: CreatePayload | None = None


class CreateFailure(msgspec.Struct):
    topic: str
    message: str


class CheckReport(msgspec.Struct):
    shop: str
    checked_at: datetime
    uri: str
    needed: list[str]
    subscribed: list[str]
    missing: list[str]
    misdirected: list[SubscriptionOut]
    extra: list[SubscriptionOut]
    # Needed topics the Admin API cannot subscribe to (declare them in shopify.app.toml).
    unsupported: list[str]
    fixed: bool = False
    created: list[SubscriptionOut] = msgspec.field(default_factory=list)
    failed: list[CreateFailure] = msgspec.field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.missing and not self.misdirected and not self.failed


def callback_uri(settings: Settings) -> str:
    if not settings.public_url:
        raise NotConfigured(
            "PUBLIC_URL is not set: set it to the service's public https:// address "
            "(webhooks are expected at PUBLIC_URL/webhooks/shopify)"
        )
    return settings.public_url.rstrip("/") + WEBHOOK_PATH


def same_uri(left: str, right: str) -> bool:
    """Equal addresses, ignoring the case of scheme and host and a trailing slash."""
    a, b = urlsplit(left.strip()), urlsplit(right.strip())
    return (a.scheme.lower(), a.netloc.lower(), a.path.rstrip("/"), a.query) == (
        b.scheme.lower(),
        b.netloc.lower(),
        b.path.rstrip("/"),
        b.query,
    )


def compare(
    shop: str, needed: list[str], uri: str, subscriptions: list[SubscriptionOut]
) -> CheckReport:
    """What is missing, misdirected and extra (pure: no I/O)."""
    by_enum = {enum_name(topic): topic for topic in needed}
    unsupported = [topic for topic in needed if enum_name(topic) not in SUBSCRIBABLE]
    ours = {s.topic for s in subscriptions if same_uri(s.uri, uri)}
    subscribed = [t for t in needed if enum_name(t) in ours]
    return CheckReport(
        shop=shop,
        checked_at=datetime.now(UTC),
        uri=uri,
        needed=list(needed),
        subscribed=subscribed,
        missing=[t for t in needed if enum_name(t) not in ours and t not in unsupported],
        misdirected=[s for s in subscriptions if s.topic in by_enum and not same_uri(s.uri, uri)],
        extra=[s for s in subscriptions if s.topic not in by_enum],
        unsupported=unsupported,
    )


async def list_subscriptions(client: AdminClient) -> list[SubscriptionOut]:
    found: list[SubscriptionOut] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        answer = await client.query(
            WEBHOOK_SUBSCRIPTIONS, {"first": PAGE_SIZE, "after": after}, cost=LIST_COST
        )
        data = answer_part(answer.data, SubscriptionsData, "webhookSubscriptions")
        page = data.webhook_subscriptions
        found.extend(_subscription(node) for node in page.nodes)
        if not page.page_info.has_next_page or not page.page_info.end_cursor:
            return found
        after = page.page_info.end_cursor
    raise ShopifyError(f"more than {MAX_PAGES * PAGE_SIZE} webhook subscriptions")


async def create_subscription(
    client: AdminClient, topic: str, uri: str
) -> SubscriptionOut | CreateFailure:
    answer = await client.query(
        WEBHOOK_SUBSCRIPTION_CREATE,
        {"topic": enum_name(topic), "subscription": {"uri": uri}},
        cost=CREATE_COST,
    )
    data = answer_part(answer.data, CreateData, "webhookSubscriptionCreate")
    payload = data.webhook_subscription_create or CreatePayload()
    created = payload.webhook_subscription
    if payload.user_errors or created is None:
        messages = (str(error.message) for error in payload.user_errors)
        message = "; ".join(messages) or "nothing was created"
        return CreateFailure(topic=topic, message=_storable(message)[:500])
    return _subscription(created)


def _subscription(node: SubscriptionNode) -> SubscriptionOut:
    subscription = SubscriptionOut(id=node.id, topic=node.topic, uri=node.uri or "")
    if any("\x00" in text for text in (subscription.id, subscription.topic, subscription.uri)):
        raise InvalidAnswer("a webhook subscription in Shopify's answer holds a NUL character")
    return subscription


def _storable(text: str) -> str:
    """Shopify's text as a column can hold it (PostgreSQL refuses NUL)."""
    return text.replace("\x00", "")


class SubscriptionChecker:
    """Checks shops with the sync's credentials, HTTP client and Admin API settings."""

    def __init__(
        self, database: Database, settings: Settings, http: httpx.AsyncClient, tokens: TokenService
    ) -> None:
        self.database = database
        self.settings = settings
        self.http = http
        self.tokens = tokens

    async def check(self, shop: str, *, fix: bool = False) -> CheckReport:
        """Raises NotConfigured, CheckRefused, or ShopifyError (recorded for the shop)."""
        uri = callback_uri(self.settings)
        client = await self._client(shop)
        try:
            subscriptions = await list_subscriptions(client)
            report = compare(shop, needed_topics(self.settings), uri, subscriptions)
            if fix:
                await self._fix(client, report)
        except (CredentialsUnusable, TokenRefreshFailed) as error:
            await record_failure(self.database, shop, str(error))
            raise CheckRefused(str(error)) from None
        except ShopifyError as error:
            await record_failure(self.database, shop, str(error))
            log.warning(
                "subscription check failed", extra={"fields": {"shop": shop, "error": str(error)}}
            )
            raise
        await record_check(self.database, report)
        log.info(
            "subscription check",
            extra={
                "fields": {
                    "shop": shop,
                    "missing": len(report.missing),
                    "misdirected": len(report.misdirected),
                    "extra": len(report.extra),
                    "created": len(report.created),
                    "fix": fix,
                }
            },
        )
        return report

    async def _client(self, shop: str) -> AdminClient:
        try:
            credentials = await usable_credentials(self.database, self.tokens.cipher, shop)
        except CredentialsUnusable as error:
            key_missing = isinstance(error, CredentialsKeyMissing)
            raise CheckRefused(str(error), key_missing=key_missing) from None
        return AdminClient(
            self.http,
            shop=shop,
            tokens=self.tokens.for_shop(shop, credentials),
            base_url=self.settings.shopify_admin_base_url,
            api_version=self.settings.shopify_api_version,
        )

    async def _fix(self, client: AdminClient, report: CheckReport) -> None:
        """Creates what is missing, one topic at a time; never deletes or changes anything."""
        report.fixed = True
        for topic in list(report.missing):
            outcome = await create_subscription(client, topic, report.uri)
            if isinstance(outcome, CreateFailure):
                report.failed.append(outcome)
                continue
            report.created.append(outcome)
            report.missing.remove(topic)
            report.subscribed.append(topic)
        report.subscribed.sort()


_RECORD = """
INSERT INTO subscription_checks
    (id, shop_id, checked_at, missing, extra, misdirected, report, error)
VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6::jsonb, NULL)
ON CONFLICT (shop_id) DO UPDATE
SET checked_at = EXCLUDED.checked_at, missing = EXCLUDED.missing, extra = EXCLUDED.extra,
    misdirected = EXCLUDED.misdirected, report = EXCLUDED.report, error = NULL
"""

# A failed check keeps the last known counts: an error must not make missing look fixed.
_RECORD_FAILURE = """
INSERT INTO subscription_checks (id, shop_id, checked_at, missing, extra, misdirected, error)
VALUES (gen_random_uuid(), $1, now(), 0, 0, 0, $2)
ON CONFLICT (shop_id) DO UPDATE SET checked_at = EXCLUDED.checked_at, error = EXCLUDED.error
"""


async def record_check(database: Database, report: CheckReport) -> None:
    async with database.connection() as connection:
        await connection.execute(
            _RECORD,
            report.shop,
            report.checked_at,
            len(report.missing),
            len(report.extra),
            len(report.misdirected),
            msgspec.json.encode(report).decode(),
        )


async def record_failure(database: Database, shop: str, error: str) -> None:
    async with database.connection() as connection:
        await connection.execute(_RECORD_FAILURE, shop, _storable(error)[:1000])
