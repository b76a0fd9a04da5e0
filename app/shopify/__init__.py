"""Shopify's GraphQL Admin API: the client (httpx), the queries, bulk operations, typed nodes.

Nothing here touches the database; app/sync uses it to fetch and then applies
what it fetched through the same SQL functions as webhook deliveries.
"""
