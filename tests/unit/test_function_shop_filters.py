"""Every statement of the SQL functions names the shop of each per-shop table it reads or writes.

On Citus a statement goes to one shard only when each distributed table in it
is filtered or joined by shop_id (docs/scaling.md, section 5); a statement
that forgets it runs on every shard, or is refused. This check reads the
function files (no database): each reference to a per-shop table must come
with a `shop_id` condition on it in the same statement, by its alias
(`o.shop_id`) or, without an alias, by the bare column. On a Citus cluster,
tests/integration/test_citus_routing.py checks the same thing by running them.
"""

from __future__ import annotations

import re

from app.db.distribution import PER_SHOP
from app.db.function_files import live_functions

_KEYWORDS = {"where", "on", "set", "join", "left", "using", "select", "group", "order", "limit"}
_REFERENCE = re.compile(
    r"\b(?P<verb>FROM|JOIN|UPDATE|INTO)\s+(?P<table>" + "|".join(PER_SHOP) + r")\b"
    r"(?:\s+(?:AS\s+)?(?P<alias>\w+))?",
    re.IGNORECASE,
)


def _body(source: str) -> str:
    """The function's code without its comments."""
    return re.sub(r"--[^\n]*", "", source)


def _statements(body: str) -> list[str]:
    return [statement for statement in body.split(";") if statement.strip()]


def unfiltered_references(source: str) -> list[str]:
    """The per-shop table references of `source` whose statement never names their shop."""
    found = []
    for statement in _statements(_body(source)):
        for reference in _REFERENCE.finditer(statement):
            alias = reference["alias"]
            if reference["verb"].upper() == "INTO" or alias is None or alias.lower() in _KEYWORDS:
                # An insert names shop_id among its columns; an unaliased table, bare.
                ok = re.search(r"\bshop_id\b", statement) is not None
            else:
                ok = re.search(rf"\b{alias}\.shop_id\b", statement) is not None
            if not ok:
                found.append(" ".join(reference.group(0).split()))
    return found


def test_every_per_shop_table_in_a_function_is_filtered_by_shop() -> None:
    missing = {
        name: references
        for name, source in live_functions().items()
        if (references := unfiltered_references(source))
    }
    assert not missing, f"statements that do not name the shop of these tables: {missing}"


def test_the_check_finds_a_lookup_by_id_alone() -> None:
    """The check itself: a statement joining by id alone is reported, one by shop is not."""
    by_id = "UPDATE customers AS c SET x = 1 FROM orders AS o WHERE c.id = o.customer_id;"
    by_shop = (
        "UPDATE customers AS c SET x = 1 FROM orders AS o"
        " WHERE c.shop_id = $1 AND o.shop_id = c.shop_id AND c.id = o.customer_id;"
    )
    assert unfiltered_references(by_id) == ["UPDATE customers AS c", "FROM orders AS o"]
    assert unfiltered_references(by_shop) == []
