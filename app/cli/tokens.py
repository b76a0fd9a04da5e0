"""The shops' tokens for a command (sync, shops, subscriptions): the database, an HTTP
client for Shopify and the token service over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.access.tokens import TokenService
from app.cli.database import started_database
from app.config import Settings
from app.shopify.client import http_client


@asynccontextmanager
async def token_service(settings: Settings, url: str) -> AsyncIterator[TokenService]:
    """The database, an HTTP client for Shopify, and the shops' tokens, for one command."""
    async with started_database(settings, url) as database, http_client() as http:
        yield TokenService(database, settings, http)
