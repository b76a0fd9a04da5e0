"""Bulk query operations: validation, status per poll, and the JSONL result file.

The result is a projection of the bulk query's selection over all the data,
written on a background thread from a snapshot taken when the operation starts
(as Shopify's file reflects the data when it ran). Nested connections go on
their own lines with `__parentId`; `bulk_shuffle_children` moves them after a
later parent, since Shopify says not to rely on line order.
"""

from __future__ import annotations

import io
import json
import secrets
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values

from .cost import is_connection
from .data import BulkOperation, FakeShop, Record, gid, parse_search
from .graphql_api import Context, record_deprecated, resolve_value, schema

SHUFFLE_DISTANCE = 3
MAX_CONCURRENT = 5  # per shop, from API 2026-01 (one before)


class BulkResultStore:
    """Result files on disk, served under /bulk-results/ (standing in for cloud storage).

    Like Shopify's, each file's URL is signed: its query carries a signature
    (a credential: whoever has the URL can read the file) that must match.
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="shopify-standin-bulk-"))
        self.base_url = ""  # set by the server once it knows its port
        self._files: dict[str, Path] = {}
        self._signatures: dict[str, str] = {}
        self._lock = threading.Lock()

    def new_file(self) -> tuple[str, Path]:
        """A fresh unguessable name and its path."""
        name = f"{secrets.token_urlsafe(16)}.jsonl"
        path = self.directory / name
        with self._lock:
            self._files[name] = path
            self._signatures[name] = secrets.token_hex(32)
        return name, path

    def url(self, name: str) -> str:
        with self._lock:
            signature = self._signatures[name]
        return (
            f"{self.base_url}/bulk-results/{name}?X-Goog-Algorithm=GOOG4-RSA-SHA256"
            f"&X-Goog-Expires=604800&X-Goog-SignedHeaders=host&X-Goog-Signature={signature}"
        )

    def signature(self, name: str) -> str | None:
        with self._lock:
            return self._signatures.get(name)

    def signed(self, name: str, query: str) -> bool:
        """Whether a request's query carries the file's signature."""
        given = parse_qs(query).get("X-Goog-Signature", [""])[-1]
        expected = self.signature(name)
        return expected is not None and secrets.compare_digest(given, expected)

    def path(self, name: str) -> Path | None:
        with self._lock:
            return self._files.get(name)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class BulkResult:
    url: str | None
    partial_url: str | None
    object_count: int
    partial_count: int
    root_count: int
    file_size: int


# -- the mutation -------------------------------------------------------------------------------


def user_error(message: str, code: str, field: list[str] | None) -> dict[str, Any]:
    return {"field": field, "message": message, "code": code}


def bulk_query_problem(query: str, shop: FakeShop) -> tuple[Any, str | None]:
    """(operation, None) for a valid bulk query, else (None, the reason)."""
    try:
        document = parse(query)
    except GraphQLError as err:
        return None, f"Invalid bulk query: {err.message}"
    record_deprecated(document, shop)
    errors = validate(schema(), document)
    if errors:
        return None, f"Invalid bulk query: {errors[0].message}"
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation.value != "query":
        return None, "Invalid bulk query: the document must hold exactly one query operation."
    plan = compile_plan(schema().query_type, operations[0].selection_set, document)
    if not any(step.connection for step in plan):
        return None, "Bulk queries must contain at least one connection."
    return (document, operations[0]), None


def start_bulk_query(query: str, ctx: Context) -> dict[str, Any]:
    """bulkOperationRunQuery: refuse or create the operation and start writing its file."""
    shop = ctx.shop
    parsed, problem = bulk_query_problem(query, shop)
    if problem is not None:
        return {"bulkOperation": None, "userErrors": [user_error(problem, "INVALID", ["query"])]}
    running = [op for op in shop.bulk_operations if op.running and op.type == "QUERY"]
    limit = MAX_CONCURRENT if _at_least(ctx.api_version, "2026-01") else 1
    if len(running) >= limit:
        message = (
            f"A bulk query operation for this app and shop is already in progress: {running[0].id}."
        )
        return {
            "bulkOperation": None,
            "userErrors": [user_error(message, "OPERATION_IN_PROGRESS", None)],
        }
    operation = BulkOperation(
        number=shop.next_bulk_number(),
        query=query,
        api_version=ctx.api_version,
        created_at=shop.now(),
        polls_to_complete=shop.bulk_polls_to_complete,
        fail=shop.take_bulk_failure(),
        shuffle_children=shop.bulk_shuffle_children,
    )
    shop.bulk_operations.append(operation)
    document, definition = parsed
    plan = compile_plan(schema().query_type, definition.selection_set, document)
    roots = [(step, list(root_items(step, ctx))) for step in plan if step.connection]
    writer = threading.Thread(
        target=_write_result,
        args=(operation, roots, ctx),
        name=f"bulk-{operation.number}",
        daemon=True,
    )
    writer.start()
    return {"bulkOperation": operation, "userErrors": []}


def _at_least(version: str, minimum: str) -> bool:
    return not version[:1].isdigit() or version >= minimum


def poll(operation: BulkOperation, ctx: Context) -> None:
    """Advance the status once per request: CREATED/RUNNING for N polls, then finished."""
    if not operation.running or operation.number in ctx.polled:
        return
    ctx.polled.add(operation.number)
    operation.polls += 1
    if operation.polls <= operation.polls_to_complete or not operation.ready.is_set():
        first_of_several = operation.polls == 1 and operation.polls_to_complete > 1
        operation.status = "CREATED" if first_of_several else "RUNNING"
        return
    finish(operation, ctx.shop)


def finish(operation: BulkOperation, shop: FakeShop) -> None:
    result: BulkResult = operation.result
    operation.completed_at = shop.now()
    if operation.fail is None:
        operation.status = "COMPLETED"
        operation.url = result.url
        operation.object_count = result.object_count
        operation.root_object_count = result.root_count
        operation.file_size = result.file_size
        return
    operation.status = "FAILED"
    operation.error_code = "INTERNAL_SERVER_ERROR"
    if operation.fail == "partial":
        operation.partial_data_url = result.partial_url
        operation.object_count = result.partial_count


# -- the plan: the bulk query's selection, compiled once ------------------------------------------


@dataclass
class Step:
    """One selected field: how to get it and how to write it."""

    key: str
    type_name: str
    name: str
    return_type: Any
    args: dict[str, Any]
    condition: str | None  # fragment type condition on an abstract parent
    children: list[Step]
    connection: bool
    serialize: Callable[[Any], Any] | None  # leaves only


def compile_plan(parent: Any, selection_set: SelectionSetNode | None, document: Any) -> list[Step]:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return _compile(parent, selection_set, fragments, None)


def _compile(
    parent: Any, selection_set: Any, fragments: dict[str, Any], condition: str | None
) -> list[Step]:
    steps: list[Step] = []
    if selection_set is None:
        return steps
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            step = _compile_field(parent, selection, fragments, condition)
            if step is not None:
                steps.append(step)
            continue
        if isinstance(selection, FragmentSpreadNode):
            node = fragments[selection.name.value]
            type_name = node.type_condition.name.value
        else:
            node = selection
            type_name = node.type_condition.name.value if node.type_condition else parent.name
        inner_type = schema().get_type(type_name)
        inner_condition = type_name if is_abstract_type(parent) else condition
        steps.extend(_compile(inner_type, node.selection_set, fragments, inner_condition))
    return steps


def _compile_field(
    parent: Any, node: FieldNode, fragments: dict[str, Any], condition: str | None
) -> Step | None:
    name = node.name.value
    key = node.alias.value if node.alias else name
    if name == "__typename":
        return Step(key, parent.name, name, None, {}, condition, [], False, None)
    definition = parent.fields[name]
    named = get_named_type(definition.type)
    args = get_argument_values(definition, node, {})
    if is_leaf_type(named):
        return Step(
            key,
            parent.name,
            name,
            definition.type,
            args,
            condition,
            [],
            False,
            _leaf_serializer(definition.type, named),
        )
    if is_connection(named):
        node_steps = _connection_node_steps(named, node, fragments)
        return Step(
            key, parent.name, name, definition.type, args, condition, node_steps, True, None
        )
    children = _compile(named, node.selection_set, fragments, None)
    return Step(key, parent.name, name, definition.type, args, condition, children, False, None)


def _connection_node_steps(
    connection: Any, node: FieldNode, fragments: dict[str, Any]
) -> list[Step]:
    """The node selection of `edges { node { … } }` and/or `nodes { … }`."""
    node_type = get_named_type(connection.fields["nodes"].type)
    steps: list[Step] = []
    for selection in node.selection_set.selections if node.selection_set else ():
        if not isinstance(selection, FieldNode):
            continue
        if selection.name.value == "nodes":
            steps.extend(_compile(node_type, selection.selection_set, fragments, None))
        elif selection.name.value == "edges" and selection.selection_set:
            for inner in selection.selection_set.selections:
                if isinstance(inner, FieldNode) and inner.name.value == "node":
                    steps.extend(_compile(node_type, inner.selection_set, fragments, None))
    return steps


def _leaf_serializer(type_: Any, named: Any) -> Callable[[Any], Any]:
    if is_list_type(get_nullable_type(type_)):
        return lambda value: [named.serialize(v) for v in value]
    return named.serialize  # type: ignore[no-any-return]


# -- the projection -----------------------------------------------------------------------------


def root_items(step: Step, ctx: Context) -> Iterable[Record]:
    """All records of a root connection, filtered and sorted like the paginated query."""
    shop = ctx.shop
    kind = {"customers": "customer", "orders": "order"}.get(step.name)
    scope = {"customers": "read_customers", "orders": "read_orders"}.get(step.name)
    if kind is None or scope not in shop.scopes:
        return []
    with shop.lock:
        page = shop.page(
            kind,
            reverse=bool(step.args.get("reverse")),
            sort_key=step.args.get("sortKey") or "ID",
            terms=parse_search(step.args.get("query")),
        )
    return page.items


def nested_items(step: Step, source: Any, ctx: Context) -> list[Any]:
    if step.type_name == "Order" and step.name == "lineItems":
        return sorted(source["line_items"], key=lambda item: item["id"])
    if step.type_name == "Customer" and step.name == "orders":
        return ctx.shop.orders_of(source["id"])
    return []


def project(
    steps: list[Step], source: Any, ctx: Context, nested: list[tuple[Step, Any]]
) -> dict[str, Any]:
    """The JSON object for `source`; nested connections are left in `nested` for own lines."""
    result: dict[str, Any] = {}
    runtime_type = source.get("__typename") if isinstance(source, dict) else None
    for step in steps:
        if step.condition is not None and step.condition != runtime_type:
            continue
        if step.name == "__typename":
            result[step.key] = runtime_type or step.type_name
            continue
        if step.connection:
            nested.append((step, source))
            continue
        value = resolve_value(step.type_name, step.name, step.return_type, source, step.args, ctx)
        result[step.key] = _shape(step, value, ctx)
    return result


def _shape(step: Step, value: Any, ctx: Context) -> Any:
    if value is None:
        return None
    if step.serialize is not None:
        return step.serialize(value)
    ignored: list[tuple[Step, Any]] = []  # connections below a plain object are not supported
    if isinstance(value, list):
        return [project(step.children, item, ctx, ignored) for item in value]
    return project(step.children, value, ctx, ignored)


def _parent_id(source: Any) -> str:
    return gid(source["__typename"], source["id"])


def lines_for(
    step: Step, items: Iterable[Any], ctx: Context, parent: str | None
) -> Iterator[tuple[str, list[str]]]:
    """(line of each node, lines of its nested connections, recursively)."""
    for item in items:
        nested: list[tuple[Step, Any]] = []
        obj = project(step.children, item, ctx, nested)
        if parent is not None:
            obj["__parentId"] = parent
        children: list[str] = []
        for child_step, source in nested:
            child_items = nested_items(child_step, source, ctx)
            for line, grandchildren in lines_for(child_step, child_items, ctx, _parent_id(source)):
                children.append(line)
                children.extend(grandchildren)
        yield json.dumps(obj, separators=(",", ":")), children


def ordered_lines(groups: Iterable[tuple[str, list[str]]], shuffle: bool) -> Iterator[str]:
    """Each parent then its children; shuffled: children k after parent k + 3."""
    pending: deque[list[str]] = deque()
    for parent, children in groups:
        yield parent
        if not shuffle:
            yield from children
            continue
        pending.append(children)
        if len(pending) > SHUFFLE_DISTANCE:
            yield from pending.popleft()
    while pending:
        yield from pending.popleft()


def _write_result(
    operation: BulkOperation, roots: list[tuple[Step, list[Record]]], ctx: Context
) -> None:
    store: BulkResultStore = ctx.shop.results
    name, path = store.new_file()
    count = root_count = 0
    try:
        with path.open("wb") as out:
            for step, items in roots:
                root_count += len(items)
                groups = lines_for(step, items, ctx, None)
                for line in ordered_lines(groups, operation.shuffle_children):
                    out.write(line.encode() + b"\n")
                    count += 1
        partial_count = count // 2
        partial_url = None
        if operation.fail == "partial":
            partial_name, partial_path = store.new_file()
            _copy_lines(path, partial_path, partial_count)
            partial_url = store.url(partial_name)
        operation.result = BulkResult(
            url=store.url(name) if count else None,  # Shopify: no file for an empty result
            partial_url=partial_url,
            object_count=count,
            partial_count=partial_count,
            root_count=root_count,
            file_size=path.stat().st_size,
        )
    finally:
        if operation.result is None:
            operation.result = BulkResult(None, None, 0, 0, 0, 0)
            operation.fail = operation.fail or "full"
        operation.ready.set()


def _copy_lines(source: Path, target: Path, lines: int) -> None:
    with source.open("rb") as reader, target.open("wb") as writer:
        for _ in range(lines):
            writer.write(reader.readline())


def stream_file(path: Path, out: BinaryIO | io.BufferedIOBase, chunk: int = 64 * 1024) -> None:
    with path.open("rb") as reader:
        shutil.copyfileobj(reader, out, chunk)
