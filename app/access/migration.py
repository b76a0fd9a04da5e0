"""Moving a shop from a non-expiring offline token to an expiring one (before 2027-01-01).

Shopify's token exchange with the old token as subject gives an expiring pair
and retires the old token. The old token is kept, encrypted, until one Admin
API call with the new pair has worked: if the exchange's answer is lost, or
the pair cannot be stored, asking again with the old token returns the same
pair (for 7 days), so running the migration again always recovers.
"""

from __future__ import annotations

from app.access.credentials import Credentials, forget_original
from app.access.tokens import TokenService
from app.shopify.client import AdminClient, FixedToken
from app.shopify.errors import ShopifyError

# The cheapest query there is: proves the token works, reads nothing of the shop's customers.
VERIFY_QUERY = "query VerifyToken { shop { id } }"


async def migrate_shop(tokens: TokenService, credentials: Credentials) -> str:
    """Migrate the shop's token if it is non-expiring; what happened, in words."""
    if credentials.expiring and credentials.original_token is None:
        return "already on an expiring token"
    if not credentials.expiring:
        credentials = await tokens.migrate(credentials)
    settings = tokens.settings
    client = AdminClient(
        tokens.http,
        shop=credentials.shop,
        tokens=FixedToken(credentials.access_token),
        base_url=settings.shopify_admin_base_url,
        api_version=settings.shopify_api_version,
    )
    try:
        await client.query(VERIFY_QUERY, cost=1)
    except ShopifyError as error:
        return (
            f"migrated to an expiring token, not yet verified ({error}); the original token"
            " is kept: run the migration again"
        )
    await forget_original(tokens.database, credentials.shop, credentials.generation)
    return "migrated to an expiring token (verified)"
