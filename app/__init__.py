"""shopify-ingest: receives Shopify webhooks, keeps customers and orders per shop in PostgreSQL."""
