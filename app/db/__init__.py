"""Database: tables, engine and pool, migrations, the SQL functions' sources (functions/,
function_files.py), the committed schema dump, and the embedded development server."""
