"""The operator console end to end, in a real browser (Debian's chromium, driven by Playwright).

The real service runs as its own process with CONSOLE_ENABLED, on a fresh
migrated database, with a user made by the documented command. In the
browser: a wrong password is refused; the right one logs in; the webhook
deliveries are filtered down to a shop's failed one; the replay form's dry
run counts it, the real run replays it; the list then shows it processed, and
so does the database.

No browser is downloaded: Playwright launches the system's chromium
(`apt-get install chromium`). Without it the test is skipped locally and
fails in CI (CI=true). Set CONSOLE_SCREENSHOT=docs/images/console.png to keep
a screenshot of the filtered list.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from tests.console.support import (
    PASSWORD,
    WRONG_PASSWORD,
    Service,
    console_service,
    create_console_user,
    failed_order,
    insert_failed_delivery,
)
from tests.support import binaries, shopify

pytestmark = [pytest.mark.browser, pytest.mark.chromium, pytest.mark.timeout(90)]

USERNAME = "operator"
ORDER, CUSTOMER = 8_500_000_001, 8_600_000_001
STEP_MS = 15_000  # the longest any one step may take


@pytest.fixture(scope="module")
def service(create_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    url: str = create_database()
    printed = create_console_user(url, USERNAME, PASSWORD)
    assert f"user {USERNAME} created" in printed
    log_path = tmp_path_factory.mktemp("console-browser") / "service.log"
    with console_service(url, log_path) as running:
        yield running


@pytest.fixture
async def page(service: Service) -> AsyncIterator[Any]:
    executable = binaries.path("chromium")
    from playwright.async_api import async_playwright

    # Root cannot use chromium's sandbox (containers, CI).
    arguments = ["--no-sandbox"] if os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=[*arguments, "--disable-dev-shm-usage"]
        )
        try:
            context = await browser.new_context(
                base_url=service.base_url, viewport={"width": 1280, "height": 720}
            )
            browser_page = await context.new_page()
            browser_page.set_default_timeout(STEP_MS)
            yield browser_page
        finally:
            await browser.close()


@pytest.fixture
async def ledger(service: Service) -> AsyncIterator[dict[str, UUID]]:
    """A failed delivery in each of two shops, and processed ones around them."""
    connection = await asyncpg.connect(service.database_url, statement_cache_size=0)
    try:
        ids = {
            "mine": await insert_failed_delivery(
                connection, shopify.SHOP, "browser-failed-1", failed_order(ORDER, CUSTOMER)
            ),
            "other": await insert_failed_delivery(
                connection,
                shopify.OTHER_SHOP,
                "browser-failed-2",
                failed_order(ORDER + 1, CUSTOMER + 1),
            ),
        }
    finally:
        await connection.close()
    async with httpx.AsyncClient(base_url=service.base_url, timeout=5.0) as client:
        for number, shop in enumerate((shopify.SHOP, shopify.OTHER_SHOP, shopify.SHOP)):
            payload = shopify.customer(8_700_000_000 + number)
            status = await shopify.deliver(client, "customers/create", payload, shop=shop)
            assert status == "processed"
    yield ids


async def ledger_row(service: Service, ledger_id: UUID) -> dict[str, Any]:
    connection = await asyncpg.connect(service.database_url, statement_cache_size=0)
    try:
        row = await connection.fetchrow(
            "SELECT status, attempts, last_error FROM webhook_events WHERE id = $1", ledger_id
        )
        order = await connection.fetchval(
            "SELECT count(*) FROM orders WHERE shop_id = $1 AND shopify_id = $2",
            shopify.SHOP,
            str(ORDER),
        )
    finally:
        await connection.close()
    assert row is not None
    return {**dict(row), "orders": order}


async def filter_deliveries(page: Any, **filters: str) -> None:
    """Webhook Events, then the filter sidebar: text filters typed, choices picked."""
    await page.get_by_role("link", name="Webhook Events").click()
    await page.get_by_text("Show filters").click()
    for name, value in filters.items():
        field = page.locator(f"[name={name}]")
        if await field.evaluate("element => element.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await page.get_by_role("button", name="Apply").click()


async def screenshot(page: Any, path: str) -> None:
    """The filtered list with its filters, once the notice of the filter has been closed."""
    await page.locator("#message_popup .close a").click()
    await page.locator("#message_popup").wait_for(state="hidden")
    await page.evaluate("window.scrollTo(0, 0)")
    await page.wait_for_timeout(300)  # the list's fade-in
    await page.screenshot(path=path)


async def submit_replay(page: Any, *, dry_run: bool) -> str:
    """On the replay form: this shop's failed deliveries; the message shown."""
    await page.locator("input[name=shop]").fill(shopify.SHOP)
    await page.locator("select[name=dry_run]").select_option("true" if dry_run else "false")
    await page.locator("[data-uitest=submit_custom_form_button]").click()
    await page.get_by_text("Form Submitted").wait_for()
    message: str = await page.locator("text=failed delivery").inner_text()
    return message


async def test_log_in_filter_failed_deliveries_replay_one_and_see_it_processed(
    service: Service, page: Any, ledger: dict[str, UUID]
) -> None:
    await page.goto("/admin")  # redirected to /admin/, then to its login page
    await page.locator("input[name=username]").wait_for()

    # A wrong password is refused: still the login page, an error, no session.
    await page.locator("input[name=username]").fill(USERNAME)
    await page.locator("input[name=password]").fill(WRONG_PASSWORD)
    await page.locator("[data-uitest=login_button]").click()
    await page.get_by_text("Problem logging in").wait_for()
    assert "#/login" in page.url
    assert "id" not in {cookie["name"] for cookie in await page.context.cookies()}

    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("[data-uitest=login_button]").click()
    await page.wait_for_url("**/admin/#/")
    await page.locator("[data-uitest=nav_dropdown_button]", has_text=USERNAME).wait_for()

    # The shop's failed delivery, found with the filters.
    await filter_deliveries(page, shop_id=shopify.SHOP, status="failed")
    await page.get_by_text("Showing 1 of 1 result(s)").wait_for()
    rows = page.locator(".table_wrapper tbody tr")
    assert await rows.count() == 1
    row = await rows.first.inner_text()
    assert shopify.SHOP in row and "orders/create" in row and "Failed" in row
    assert "financial_status" in row  # the reason it failed
    if target := os.environ.get("CONSOLE_SCREENSHOT"):
        await screenshot(page, target)

    # Dry run first: counted, nothing changed.
    await page.get_by_role("link", name="Replay Failed Deliveries").click()
    dry = await submit_replay(page, dry_run=True)
    assert dry == (
        f"Dry run: 1 failed delivery of {shopify.SHOP} would be replayed (orders/create: 1)."
        " Nothing was changed."
    )
    assert (await ledger_row(service, ledger["mine"]))["status"] == "failed"

    # Then for real.
    await page.get_by_role("link", name="Use again").click()
    done = await submit_replay(page, dry_run=False)
    assert done.startswith(
        f"Replayed 1 of 1 failed delivery of {shopify.SHOP} (orders/create: 1): 1 processed,"
    )

    # The list shows it processed, and no failed delivery of the shop is left.
    await page.goto("/admin/#/")
    await filter_deliveries(page, shop_id=shopify.SHOP, topic="orders/create", status="processed")
    await page.get_by_text("Showing 1 of 1 result(s)").wait_for()
    row = await page.locator(".table_wrapper tbody tr").first.inner_text()
    assert "Processed" in row and "financial_status" not in row
    await page.goto("/admin/#/")
    await filter_deliveries(page, shop_id=shopify.SHOP, status="failed")
    await page.get_by_text("No results found").wait_for()
    # The sidebar's link lists every shop's failed deliveries: the other shop's is left.
    await page.goto("/admin/#/")
    await page.get_by_role("link", name="Failed deliveries", exact=True).click()
    await page.get_by_text("Showing 1 of 1 result(s)").wait_for()
    row = await page.locator(".table_wrapper tbody tr").first.inner_text()
    assert shopify.OTHER_SHOP in row and "Failed" in row

    # And so does the database; the other shop's failed delivery was left alone.
    replayed = await ledger_row(service, ledger["mine"])
    assert (replayed["status"], replayed["attempts"], replayed["last_error"]) == (
        "processed",
        2,
        None,
    )
    assert replayed["orders"] == 1
    assert (await ledger_row(service, ledger["other"]))["status"] == "failed"

    # Nothing secret or personal reached the service's log.
    log = service.log()
    for leaked in (PASSWORD, WRONG_PASSWORD, "replayed@example.com", shopify.SECRET):
        assert leaked not in log
    assert '"message": "console replay"' in log


VIEWS = {
    "Shops": "shops",
    "Customers": "customers",
    "Orders": "orders",
    "Sync Runs": "sync_runs",
    "Webhook Events": "webhook_events",
}


@pytest.fixture
async def one_of_each(service: Service) -> AsyncIterator[None]:
    """At least one row in every view: a customer and their order (and so a shop), a run."""
    async with httpx.AsyncClient(base_url=service.base_url, timeout=5.0) as client:
        order = shopify.order(8_500_000_100, customer_id=8_600_000_100)
        assert await shopify.deliver(client, "orders/create", order) == "processed"
    connection = await asyncpg.connect(service.database_url, statement_cache_size=0)
    try:
        await connection.execute(
            "INSERT INTO sync_runs (shop_id, kind, resource, status, fetched)"
            " VALUES ($1, 'full', 'customers,orders', 'succeeded', 2)",
            shopify.SHOP,
        )
    finally:
        await connection.close()
    yield


async def log_in(page: Any) -> None:
    await page.goto("/admin")
    await page.locator("input[name=username]").fill(USERNAME)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("[data-uitest=login_button]").click()
    await page.wait_for_url("**/admin/#/")


async def test_every_view_lists_its_rows_and_offers_only_what_it_can_do(
    service: Service, page: Any, one_of_each: None
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await log_in(page)

    for view, table in VIEWS.items():
        await page.goto("/admin/#/")
        await page.get_by_role("link", name=view).first.click()
        await page.wait_for_function("t => location.hash.startsWith(`#/${t}`)", arg=table)
        rows = page.locator(".table_wrapper tbody tr")
        await rows.first.wait_for()
        assert await rows.count() >= 1, view
        assert errors == [], (view, errors)
        # Read-only: nothing offers to add, select, edit or delete rows.
        assert not await page.get_by_text("Add Row").is_visible(), view
        assert not await rows.first.locator("input[type=checkbox]").is_visible(), view
        assert not await rows.first.locator("svg.fa-ellipsis-vertical").is_visible(), view

        # A row's own page shows it, without Save or a Delete menu.
        await rows.first.locator("span.link a").click()
        await page.locator("form label").first.wait_for()
        assert not await page.locator("[data-uitest=save_button]").is_visible(), view
        assert not await page.locator(".header [data-uitest=drop_down_button]").is_visible(), view
        assert errors == [], (view, errors)
