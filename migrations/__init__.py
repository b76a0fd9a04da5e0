"""Piccolo's migrations of the `ingest` app, applied in ID order by `python -m app migrate`.

Generated ones (`piccolo migrations new ingest --auto`) follow app/db/tables.py;
hand-written ones (IDs ending in 000000) do what Piccolo cannot express.
sql/<migration>/ holds the frozen copies of the SQL functions a migration
installs (app/db/functions/README.md); schema.sql is the schema they create,
as pg_dump writes it (app/db/schema_dump.py).
"""
