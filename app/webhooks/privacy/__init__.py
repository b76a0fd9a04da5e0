"""Shopify's privacy topics: redaction (erasure in batches, scrubbing), data requests (export)."""
