"""Customer events: the outbox `customer_events`, its feed, its relay to NATS, its retention.

The events are written by the database itself, in the transaction of the
change (the triggers on orders and customers, the scoring pass: see
app/db/functions/ and docs/customer-events.md). This package reads them: the
feed (`GET /shops/{shop}/customer-events`), the relay
(`python -m app events relay`) and the retention that deletes old ones.
"""
