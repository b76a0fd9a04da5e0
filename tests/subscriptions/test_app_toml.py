"""docs/shopify.app.toml declares what the subscription check expects, plus compliance topics."""

from __future__ import annotations

import tomllib

from app.subscriptions.topics import COMPLIANCE_TOPICS, default_topics
from tests.support.ops import ROOT


def test_the_app_toml_declares_every_needed_topic_and_the_compliance_topics() -> None:
    config = tomllib.loads((ROOT / "docs" / "shopify.app.toml").read_text())
    webhooks = config["webhooks"]
    assert webhooks["api_version"]
    topics: list[str] = []
    compliance: list[str] = []
    for subscription in webhooks["subscriptions"]:
        assert subscription["uri"].endswith("/webhooks/shopify")
        topics += subscription.get("topics", [])
        compliance += subscription.get("compliance_topics", [])
    assert sorted(topics) == default_topics()
    assert set(compliance) == COMPLIANCE_TOPICS
