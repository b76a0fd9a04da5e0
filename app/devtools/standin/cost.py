"""Shopify's calculated query cost, requested (static) and actual (from the answer).

Shopify's documented rules: scalars and enums cost 0, objects 1, a connection
2 plus `first`/`last` times the cost of one node, a mutation 10; interfaces and
unions cost the most expensive of their possible selections. The actual cost
uses the number of nodes really returned, and the difference is refunded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
)
from graphql.execution.values import get_argument_values

MAX_QUERY_COST = 1000
MUTATION_COST = 10
CONNECTION_COST = 2
MAX_PAGE = 250


@dataclass
class Priced:
    cost: int
    errors: list[dict[str, Any]] = field(default_factory=list)


def is_connection(type_: Any) -> bool:
    return (
        isinstance(type_, GraphQLObjectType)
        and type_.name.endswith("Connection")
        and "pageInfo" in type_.fields
    )


def requested_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any],
) -> Priced:
    """The worst-case cost Shopify charges up front; page-size errors come with it."""
    walker = _Walker(schema, document, variables)
    root = schema.get_root_type(operation.operation)
    assert root is not None
    if operation.operation.value == "mutation":
        fields = [node for node, _ in walker.fields(root, operation.selection_set)]
        return Priced(MUTATION_COST * sum(not f.name.value.startswith("__") for f in fields))
    cost = walker.requested(root, operation.selection_set)
    return Priced(cost, walker.errors)


def actual_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    data: dict[str, Any] | None,
) -> int:
    """The cost of what was returned: connections count the nodes actually there."""
    if operation.operation.value == "mutation":
        return requested_cost(schema, document, operation, {}).cost
    if data is None:
        return 0
    walker = _Walker(schema, document, {})
    root = schema.get_root_type(operation.operation)
    assert root is not None
    return walker.actual(root, operation.selection_set, data)


class _Walker:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any]
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.errors: list[dict[str, Any]] = []
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def fields(self, parent: Any, selection_set: SelectionSetNode | None) -> Iterator[Any]:
        """(field node, type that defines it), fragments flattened."""
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
                continue
            condition, inner = self._fragment(parent, selection)
            yield from self.fields(condition, inner)

    def _fragment(self, parent: Any, selection: Any) -> tuple[Any, SelectionSetNode]:
        if isinstance(selection, FragmentSpreadNode):
            fragment = self.fragments[selection.name.value]
            return self.schema.get_type(fragment.type_condition.name.value), fragment.selection_set
        assert isinstance(selection, InlineFragmentNode)
        condition = selection.type_condition  # None: the fragment applies to the parent type
        named = parent if condition is None else self.schema.get_type(condition.name.value)
        return named, selection.selection_set

    # -- requested --------------------------------------------------------------------------

    def requested(self, parent: Any, selection_set: SelectionSetNode | None) -> int:
        """Sum of the fields; fragments on other types of an abstract parent: the dearest."""
        if selection_set is None:
            return 0
        shared = 0
        by_type: dict[str, int] = {}
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                shared += self.requested_field(parent, selection)
                continue
            condition, inner = self._fragment(parent, selection)
            cost = self.requested(condition, inner)
            if condition is parent or not is_abstract_type(parent):
                shared += cost
            else:
                by_type[condition.name] = by_type.get(condition.name, 0) + cost
        return shared + max(by_type.values(), default=0)

    def requested_field(self, parent: Any, node: FieldNode) -> int:
        definition = getattr(parent, "fields", {}).get(node.name.value)
        if definition is None or node.name.value.startswith("__"):
            return 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        args = get_argument_values(definition, node, self.variables)
        if is_connection(named):
            size = self.page_size(node, args)
            return CONNECTION_COST + size * self.requested_node(named, node.selection_set)
        child = 1 + self.requested(named, node.selection_set)
        if is_list_type(get_nullable_type(definition.type)):
            ids = args.get("ids")
            return child * (len(ids) if isinstance(ids, list) else (args.get("first") or 1))
        return child

    def requested_node(self, connection: Any, selection_set: SelectionSetNode | None) -> int:
        """The cost of one node of a connection, through `edges { node }` and `nodes`."""
        total = 0
        for node, owner in self.fields(connection, selection_set):
            name = node.name.value
            if name == "nodes":
                total += 1 + self.requested(_node_type(owner, "nodes"), node.selection_set)
            elif name == "edges":
                edge = get_named_type(owner.fields["edges"].type)
                for inner, edge_owner in self.fields(edge, node.selection_set):
                    if inner.name.value == "node":
                        node_type = get_named_type(edge_owner.fields["node"].type)
                        total += 1 + self.requested(node_type, inner.selection_set)
        return total

    def page_size(self, node: FieldNode, args: dict[str, Any]) -> int:
        """`first` or `last`: one is required and at most 250, as Shopify enforces."""
        size = args.get("first") if args.get("first") is not None else args.get("last")
        if size is None:
            self._error("you must provide one of first or last", node)
            return 0
        if size > MAX_PAGE or size < 0:
            argument = "first" if args.get("first") is not None else "last"
            self._error(
                f"The '{argument}' argument on '{node.name.value}' must be between 0 and "
                f"{MAX_PAGE} (got {size}).",
                node,
            )
            return 0
        return int(size)

    def _error(self, message: str, node: FieldNode) -> None:
        formatted = dict(GraphQLError(message, node).formatted)
        formatted["extensions"] = {"code": "BAD_REQUEST"}
        self.errors.append(formatted)

    # -- actual -----------------------------------------------------------------------------

    def actual(self, parent: Any, selection_set: SelectionSetNode | None, data: Any) -> int:
        if not isinstance(data, dict):
            return 0
        total = 0
        seen: set[str] = set()
        for node, owner in self.fields(parent, selection_set):
            key = node.alias.value if node.alias else node.name.value
            if key in seen or key not in data:
                continue
            seen.add(key)
            total += self.actual_field(owner, node, data[key])
        return total

    def actual_field(self, owner: Any, node: FieldNode, value: Any) -> int:
        definition = getattr(owner, "fields", {}).get(node.name.value)
        if definition is None or node.name.value.startswith("__"):
            return 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        if is_connection(named):
            return CONNECTION_COST + self.actual_nodes(named, node.selection_set, value)
        if isinstance(value, list):
            return sum(1 + self.actual(named, node.selection_set, item) for item in value)
        return 1 + self.actual(named, node.selection_set, value)

    def actual_nodes(self, connection: Any, selection_set: Any, value: Any) -> int:
        if not isinstance(value, dict):
            return 0
        total = 0
        for node, owner in self.fields(connection, selection_set):
            key = node.alias.value if node.alias else node.name.value
            items = value.get(key)
            if not isinstance(items, list):
                continue
            if node.name.value == "nodes":
                node_type = _node_type(owner, "nodes")
                total += sum(1 + self.actual(node_type, node.selection_set, i) for i in items)
            elif node.name.value == "edges":
                edge_type = get_named_type(owner.fields["edges"].type)
                for edge in items:
                    total += self._actual_edge(edge_type, node.selection_set, edge)
        return total

    def _actual_edge(self, edge_type: Any, selection_set: Any, edge: Any) -> int:
        total = 0
        for inner, owner in self.fields(edge_type, selection_set):
            key = inner.alias.value if inner.alias else inner.name.value
            if inner.name.value == "node" and isinstance(edge, dict) and key in edge:
                node_type = get_named_type(owner.fields["node"].type)
                total += 1 + self.actual(node_type, inner.selection_set, edge[key])
        return total


def _node_type(connection: Any, name: str) -> Any:
    return get_named_type(connection.fields[name].type)
