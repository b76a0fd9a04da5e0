"""Development tools: the stand-in Shopify, the deployment stack as processes, PgBouncer.

Used by the tests and the benchmark; never by the service itself.
"""
