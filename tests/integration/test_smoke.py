from app.db.database import Database
from tests.support import shopify


async def test_order_create_is_stored(client, db: Database) -> None:
    response = await shopify.post(client, "orders/create", shopify.fixture("orders_create"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "processed"
    async with db.connection() as connection:
        row = await connection.fetchrow("SELECT * FROM orders")
    assert row["shopify_id"] == "820982911946154508"
