"""Customer scores: RFM quintiles and segments in customers.rfm_r, rfm_f, rfm_m, segment.

The rule (counted orders, quintiles, the R x F grid) is in the SQL functions
scores_compute and scores_apply (app/db/functions/) and in
docs/customer-events.md; this package runs passes: after a full sync, on a
schedule (`python -m app scores --all --every N`) and on demand
(`POST /shops/{shop}/scores`, `python -m app scores --shop DOMAIN`).
"""
