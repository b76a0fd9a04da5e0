"""Database: tables, engine and pool, migrations, and the embedded development server."""
