"""The admin API: the ledger, replay and exports, behind ADMIN_TOKEN."""
