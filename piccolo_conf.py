"""Piccolo's configuration: the engine comes from DATABASE_URL (see app/config.py)."""

from piccolo.conf.apps import AppRegistry

from app.config import load_settings
from app.db.engine import create_engine

_settings = load_settings()

DB = create_engine(_settings.database_url, _settings.db_connect_timeout)

# Piccolo's users and sessions: the operator console's login (app/console).
APP_REGISTRY = AppRegistry(
    apps=[
        "app.db.piccolo_app",
        "piccolo.apps.user.piccolo_app",
        "piccolo_api.session_auth.piccolo_app",
    ]
)
