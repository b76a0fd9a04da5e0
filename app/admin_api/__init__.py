"""The admin API behind ADMIN_TOKEN: the ledger's deliveries, replay, exports.

Not to be confused with the operator console (app/console/), served at /admin/.
"""
