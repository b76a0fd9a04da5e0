"""`python -m app standin`: a stand-in Shopify with a demo shop, for trying the service out.

    uv run python -m app standin [--port 8001] [--shop demo.myshopify.com] [--activity 10]

It speaks the Admin API (GraphQL, validated against Shopify's schema; bulk
exports) and the OAuth side (install, token exchange, refresh), for the app
whose client id and secret are SHOPIFY_API_KEY and SHOPIFY_API_SECRET, with
PUBLIC_URL/auth/callback as its redirect URL. With --activity, the demo shop
takes a new order every so many seconds and delivers it as a webhook to the
subscriptions the service created. A development tool: it is not in the image.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from app.config import Settings

DEV_API_KEY = "dev-api-key"
DEV_SECRET = "dev-secret"  # noqa: S105 (the quick start's development secret)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from app.devtools.standin import ShopifyStandIn
        from app.devtools.standin.demo import keep_selling
        from app.devtools.standin.oauth import StandInApp
    except ImportError as error:
        print(
            f"error: the stand-in needs the development dependencies ({error.name}):"
            " run it from a clone with `uv run python -m app standin`",
            file=sys.stderr,
        )
        return 2
    secret = settings.shopify_api_secret or DEV_SECRET
    redirects = (f"{settings.public_url}/auth/callback",) if settings.public_url else ()
    app = StandInApp(
        api_key=settings.shopify_api_key or DEV_API_KEY, api_secret=secret, redirect_urls=redirects
    )
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    with ShopifyStandIn("127.0.0.1", args.port, app=app) as standin:
        shop = standin.add_shop(args.shop, token=None)
        shop.generate(customers=args.customers, orders=args.orders, line_items=2, seed=1)
        print(_instructions(standin.port, args.shop, app.api_key, settings), flush=True)
        if args.activity:
            seller = threading.Thread(
                target=keep_selling, args=(shop, secret, args.activity, stop), daemon=True
            )
            seller.start()
        stop.wait()
    return 0


def _instructions(port: int, shop: str, api_key: str, settings: Settings) -> str:
    public_url = settings.public_url or "http://127.0.0.1:8000"
    return (
        f"Stand-in Shopify at http://127.0.0.1:{port} serving {shop}.\n"
        "Run the service against it (another terminal):\n"
        f"  SHOPIFY_ADMIN_BASE_URL='http://127.0.0.1:{port}/{{shop}}' SHOPIFY_API_KEY={api_key} "
        f"SHOPIFY_API_SECRET={settings.shopify_api_secret or DEV_SECRET} "
        f"PUBLIC_URL={public_url} TOKEN_ENCRYPTION_KEY=<a Fernet key> "
        "uv run python -m app serve\n"
        f"Then connect the demo shop: open {public_url}/auth/install?shop={shop}\n"
        "Ctrl-C stops the stand-in."
    )
