"""Webhook deliveries: verify, record in the ledger, apply through the topic handlers."""
