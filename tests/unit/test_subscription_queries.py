"""The subscription check's documents and topic names match Shopify's Admin schema."""

from __future__ import annotations

import graphql
import pytest

from app.subscriptions.queries import ALL_DOCUMENTS
from app.subscriptions.topics import SUBSCRIBABLE, default_topics, enum_name
from tests.unit.test_shopify_queries import deprecated_fields, schema


@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_each_document_is_valid_and_uses_no_deprecated_field(name: str) -> None:
    document = graphql.parse(ALL_DOCUMENTS[name])
    assert graphql.validate(schema(), document) == []
    assert deprecated_fields(document) == []


def test_the_topic_enum_is_the_schemas() -> None:
    enum = schema().get_type("WebhookSubscriptionTopic")
    assert isinstance(enum, graphql.GraphQLEnumType)
    assert set(enum.values) == SUBSCRIBABLE


def test_topic_names_map_to_the_enum() -> None:
    assert enum_name("orders/create") == "ORDERS_CREATE"
    assert enum_name("customer.tags_added") == "CUSTOMER_TAGS_ADDED"
    assert all(enum_name(topic) in SUBSCRIBABLE for topic in default_topics())
