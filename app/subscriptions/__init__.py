"""Webhook subscription health: do Shopify's subscriptions still point here; who went quiet."""
