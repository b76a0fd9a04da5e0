"""Every query the service sends is valid against Shopify's schema and avoids deprecated fields."""

from __future__ import annotations

import graphql
import pytest

# The stand-in's copy of Shopify's schema: built once per process for both.
from app.devtools.standin.graphql_api import schema
from app.shopify.queries import ALL_DOCUMENTS, BULK_CUSTOMERS, BULK_ORDERS, RUN_BULK_QUERY


def deprecated_fields(document: graphql.DocumentNode) -> list[str]:
    found: list[str] = []
    type_info = graphql.TypeInfo(schema())

    class Visitor(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_: object) -> None:
            field = type_info.get_field_def()
            parent = type_info.get_parent_type()
            if field is not None and field.deprecation_reason is not None:
                found.append(f"{parent}.{node.name.value}")

    graphql.visit(document, graphql.TypeInfoVisitor(type_info, Visitor()))
    return found


@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_each_query_is_valid_and_uses_no_deprecated_field(name: str) -> None:
    document = graphql.parse(ALL_DOCUMENTS[name])
    assert graphql.validate(schema(), document) == []
    assert deprecated_fields(document) == []


def test_the_checks_catch_an_invalid_or_deprecated_query() -> None:
    invalid = graphql.parse("{ customers(first: 1) { nodes { noSuchField } } }")
    assert graphql.validate(schema(), invalid) != []
    old = graphql.parse("{ customers(first: 1) { nodes { email } } }")
    assert deprecated_fields(old) == ["Customer.email"]


def test_bulk_queries_read_whole_connections() -> None:
    # A bulk operation reads every node: its connections carry no `first`.
    for query in (BULK_CUSTOMERS, BULK_ORDERS):
        assert "first:" not in query
    assert "bulkOperationRunQuery" in RUN_BULK_QUERY
