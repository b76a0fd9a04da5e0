"""The Admin API sync: backfill of a shop's history and periodic reconciliation.

records.py      Admin API nodes mapped onto the customers and orders columns
apply.py        applying fetched objects through the delivery rules (SQL functions)
runs.py         run records, per-shop state (watermarks) and leases
full.py, incremental.py    the two kinds of sync
repair.py       clearing times stored before they were checked (a full sync's first step)
runner.py       one run of one shop, start to end; scheduler.py: every shop, on a schedule
controller.py   the HTTP endpoints; metrics.py: what /metrics shows of the sync
"""
