"""The documentation's links lead somewhere, and every alert rule's runbook to its section.

Relative links in README.md, docs/*.md and bench/README.md must name a file
of the repository, and an anchor (`page.md#section`) a heading of that page,
as GitHub makes anchors from headings.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path

import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
# Linked before they are written (by another change); checked once they exist.

_FENCE = re.compile(r"^```.*?^```[^\n]*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$", re.MULTILINE)
_RUNBOOK_LINK = re.compile(r"docs/operations\.md#(?P<anchor>[\w-]+)")


def prose(page: Path) -> str:
    """The page without its fenced code blocks (a `# comment` there is no heading)."""
    return _FENCE.sub("", page.read_text())


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    seen: Counter[str] = Counter()
    found = set()
    for heading in _HEADING.finditer(prose(page)):
        base = slug(heading.group("title"))
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return frozenset(found)


def broken_links(page: Path) -> list[str]:
    broken = []
    for link in _LINK.finditer(prose(page)):
        target = link.group("target")
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
            continue
        if anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    return broken


def test_slugs_are_githubs() -> None:
    assert slug("After a fix, or an outage") == "after-a-fix-or-an-outage"
    assert slug("Server: Uvicorn or Granian") == "server-uvicorn-or-granian"
    assert slug("The `shop_id` column") == "the-shop_id-column"


def test_the_pages_are_found() -> None:
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    assert {"README.md", "docs/README.md", "docs/operations.md", "bench/README.md"} <= names


def test_a_broken_link_is_noticed(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [no section](#nowhere)\n")
    assert broken_links(page) == ["missing.md", "#nowhere"]


def test_every_relative_link_resolves() -> None:
    broken = {
        page.relative_to(ROOT).as_posix(): links for page in PAGES if (links := broken_links(page))
    }
    assert not broken


def test_every_alert_runbook_points_at_its_section() -> None:
    rules = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    assert rules
    for rule in rules:
        link = _RUNBOOK_LINK.search(rule["annotations"]["runbook"])
        assert link is not None, rule["alert"]
        assert link.group("anchor") == slug(rule["alert"]), rule["alert"]
        assert link.group("anchor") in anchors(OPERATIONS), rule["alert"]
