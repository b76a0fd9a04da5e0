"""A stand-in for Shopify's GraphQL Admin API, for tests and the benchmark.

    with ShopifyStandIn() as shopify:
        shop = shopify.add_shop("a.myshopify.com", token="shpat_x")
        shop.generate(customers=100, orders=500)
        url = shopify.graphql_url("a.myshopify.com")  # POST with X-Shopify-Access-Token

It validates every query against Shopify's real schema (2026-04), prices it
with Shopify's cost rules and a per-shop leaky bucket, runs bulk queries into
JSONL files, and can be told to fail (`inject(Fault...)`).
"""

from .data import BulkOperation, FakeShop, LeakyBucket
from .server import Fault, RecordedRequest, ShopifyStandIn

__all__ = ["BulkOperation", "FakeShop", "Fault", "LeakyBucket", "RecordedRequest", "ShopifyStandIn"]
