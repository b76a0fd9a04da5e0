"""The monitoring files in deploy/ fit the service they watch.

Every metric the Grafana dashboard and the Prometheus alert rules query is
one the running service exports at /metrics (labels and label values
included), the dashboard's panels use the provisioned data source, the rules
and the configuration pass `promtool check`, the rules' unit tests
(alerts_test.yml) pass `promtool test rules`, and the compose services mount
what the files expect. promtool comes from the Debian `prometheus` package:
missing, the promtool tests skip locally and fail in CI (CI=true).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from app.db.database import Database
from app.db.enums import SyncRunStatus
from app.webhooks.outcomes import Outcome
from tests.e2e.deployment import compose_raw
from tests.support import binaries, shopify
from tests.support.ops import ADMIN

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "shopify-ingest.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml"

# Series Prometheus makes itself for each target; allowed in alert rules only.
SYNTHETIC = {"up"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
# Label values a label can take that a short test run cannot all produce.
KNOWN_VALUES = {
    ("shopify_ingest_deliveries_total", "outcome"): {outcome.value for outcome in Outcome},
    ("shopify_ingest_replayed_total", "outcome"): {outcome.value for outcome in Outcome},
    ("shopify_ingest_sync_runs_total", "status"): {status.value for status in SyncRunStatus},
}
# What the dashboard must show (the issue's panels).
DASHBOARD_METRICS = {
    "shopify_ingest_deliveries_total",
    "shopify_ingest_webhook_request_seconds_bucket",
    "shopify_ingest_replayed_total",
    "shopify_ingest_db_pool_connections",
    "shopify_ingest_db_pool_max_connections",
    "shopify_ingest_shops_silent",
    "shopify_ingest_sync_oldest_success_age_seconds",
    "shopify_ingest_sync_shops",
    "shopify_ingest_sync_runs_total",
}
ALERT_NAMES = {
    "ShopifyIngestDown",
    "ShopifyDeliveryFailureRatioHigh",
    "ShopifyDeliveriesUnavailable",
    "ShopifyDatabasePoolSaturated",
    "ShopifyShopsSilent",
    "ShopifySubscriptionsMissing",
    "ShopifySyncFailing",
    "ShopifySyncOverdue",
    "ShopifyShopsNeedReauthorization",
    "ShopifyNonExpiringTokens",
    "ShopifyEventsRelayLagging",
}


# --- PromQL: the metric names and label matchers of an expression -------------

# Grafana's variables are not PromQL; each stands for a range duration.
_GRAFANA_VARIABLE = re.compile(r"\$(?:__\w+|\{__\w+\})")
# The parser's match operators (not hashable), as PromQL writes them.
_MATCH_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """Every series selector of an expression, by Prometheus's grammar (promql-parser)."""
    parsed = promql_parser.parse(_GRAFANA_VARIABLE.sub("5m", expr))
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(parsed, visit)
    return found


def metric_names(expr: str) -> set[str]:
    """Every metric name an expression selects."""
    return {selector.name for selector in selectors(expr) if selector.name}


@dataclass(frozen=True)
class Matcher:
    metric: str
    label: str
    op: str
    value: str


def matchers(expr: str) -> list[Matcher]:
    """The label matchers of every selector that names its metric."""
    return [
        Matcher(selector.name, matcher.name, _written(matcher.op), matcher.value)
        for selector in selectors(expr)
        if selector.name
        for matcher in selector.matchers.matchers
    ]


def _written(op: promql_parser.MatchOp) -> str:
    return next(written for parsed, written in _MATCH_OPS if parsed == op)


def test_the_promql_reading() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="}{", y=~"b|c"}[$__rate_interval])))'
    ) == {"a_bucket"}
    assert metric_names(
        'sum without (state) (avg_over_time(in_use{state="in_use"}[5m])) '
        "/ ignoring(state) group_left(foo) max_connections > 0.8"
    ) == {"in_use", "max_connections"}
    assert metric_names("sum(rate(x_total[5m] offset 1h)) by (topic) and on() up == 0") == {
        "x_total",
        "up",
    }
    assert metric_names("max(a) * 1e3 + b:recorded:rate5m - Inf") == {"a", "b:recorded:rate5m"}
    assert metric_names("rate(a[1h:5m])") == {"a"}
    assert matchers('sum(rate(a_total{outcome=~"failed|error", topic!="x"}[5m]))') == [
        Matcher("a_total", "outcome", "=~", "failed|error"),
        Matcher("a_total", "topic", "!=", "x"),
    ]


# --- the files --------------------------------------------------------------


@cache
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    found = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return found


def dashboard_expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel.get("targets", [])]


@cache
def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_expressions() -> list[str]:
    return [rule["expr"] for rule in alert_rules()]


def prometheus_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return loaded


def provisioned_datasource() -> dict[str, Any]:
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert isinstance(source, dict)
    return source


# --- the exposition of the running service ----------------------------------


@dataclass
class Exposition:
    types: dict[str, str] = field(default_factory=dict)  # metric family -> its type
    helped: set[str] = field(default_factory=set)  # families with a HELP text
    labels: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # sample -> values

    def exports(self, name: str) -> bool:
        if name in self.types or name in self.helped or name in self.labels:
            return True
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        return any(
            name.endswith(suffix) and self.types.get(name.removesuffix(suffix)) == kind
            for kind, endings in suffixes.items()
            for suffix in endings
        )


def parse_exposition(text: str) -> Exposition:
    """The families, their types and the label values of every sample, by prometheus_client."""
    exposition = Exposition()
    for family in text_string_to_metric_families(text):
        exposition.types[family.name] = family.type
        if family.documentation:
            exposition.helped.add(family.name)
        for sample in family.samples:
            values = exposition.labels.setdefault(sample.name, {})
            for label, value in sample.labels.items():
                values.setdefault(label, set()).add(value)
    return exposition


async def drive_and_scrape(client: httpx.AsyncClient) -> Exposition:
    """Deliveries of several outcomes and a replay, so the labelled series exist; then /metrics."""
    processed = await shopify.post(client, "orders/create", shopify.order(1), webhook_id="mon-1")
    assert processed.json()["status"] == "processed"
    duplicate = await shopify.post(client, "orders/create", shopify.order(1), webhook_id="mon-1")
    assert duplicate.json()["status"] == "duplicate"
    failed = await shopify.post(client, "customers/create", {"id": "x"}, webhook_id="mon-2")
    assert failed.json()["status"] == "failed"
    ignored = await shopify.post(client, "products/create", {"id": 5}, webhook_id="mon-3")
    assert ignored.json()["status"] == "ignored"
    body = shopify.encode(shopify.order(2))
    unsigned = shopify.headers("orders/create", body, secret="not-the-secret")
    assert (await shopify.post_raw(client, body, unsigned)).status_code == 401
    replay = await client.post("/replay", json={"webhook_ids": ["mon-1", "mon-2"]}, headers=ADMIN)
    assert replay.status_code == 200, replay.text

    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return parse_exposition(response.text)


# --- tests ------------------------------------------------------------------


async def test_every_queried_metric_is_exported(client: httpx.AsyncClient, db: Database) -> None:
    exposition = await drive_and_scrape(client)
    assert exposition.types["shopify_ingest_webhook_request_seconds"] == "histogram"

    used = {
        "dashboard": set().union(*map(metric_names, dashboard_expressions())),
        "alerts": set().union(*map(metric_names, alert_expressions())),
    }
    assert used["dashboard"] >= DASHBOARD_METRICS, DASHBOARD_METRICS - used["dashboard"]
    assert used["dashboard"] & SYNTHETIC == set(), "the dashboard shows only the service's metrics"
    for where, names in used.items():
        missing = {name for name in names - SYNTHETIC if not exposition.exports(name)}
        assert not missing, f"{where} queries metrics /metrics does not export: {sorted(missing)}"
        foreign = {name for name in names - SYNTHETIC if not name.startswith("shopify_ingest_")}
        assert not foreign, f"{where}: {sorted(foreign)}"

    # Every label matcher names a label the metric has, and values it can take.
    for expr in dashboard_expressions() + alert_expressions():
        for matcher in matchers(expr):
            if matcher.metric in SYNTHETIC:
                continue
            exported = exposition.labels.get(matcher.metric)
            assert exported, f"no samples of {matcher.metric} after the deliveries ({expr})"
            assert matcher.label in set(exported) | TARGET_LABELS, (matcher, sorted(exported))
            if matcher.label in TARGET_LABELS or not re.fullmatch(r"\w+(\|\w+)*", matcher.value):
                continue
            possible = exported[matcher.label] | KNOWN_VALUES.get(
                (matcher.metric, matcher.label), set()
            )
            for value in matcher.value.split("|"):
                assert value in possible, (matcher, sorted(possible))


def test_the_synthetic_up_series_is_the_scrape_job_of_the_service() -> None:
    (job,) = prometheus_config()["scrape_configs"]
    up = [m for expr in alert_expressions() for m in matchers(expr) if m.metric == "up"]
    assert up, "an alert for the service's target being down"
    assert all((m.label, m.op, m.value) == ("job", "=", job["job_name"]) for m in up), up


def test_prometheus_scrapes_the_compose_app_and_loads_the_rules() -> None:
    config = prometheus_config()
    assert config["rule_files"] == [ALERTS.name]
    (job,) = config["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (static,) = job["static_configs"]
    (target,) = static["targets"]
    host, port = target.split(":")
    services = compose_raw()["services"]
    assert host in services
    # The port the service listens on inside its container (the image's PORT).
    assert any(mapping.rsplit(":", 1)[1] == port for mapping in services[host]["ports"])


def test_every_alert_rule_has_a_summary_and_a_one_line_runbook() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == ALERT_NAMES
    for rule in rules:
        annotations = rule.get("annotations", {})
        assert annotations.get("summary", "").strip(), rule["alert"]
        runbook = annotations.get("runbook", "").strip()
        assert runbook and "\n" not in runbook, rule["alert"]
        assert rule.get("labels", {}).get("severity") in ("critical", "warning"), rule["alert"]


def test_the_dashboard_uses_the_provisioned_prometheus() -> None:
    source = provisioned_datasource()
    assert source["type"] == "prometheus"
    expected = {"type": "prometheus", "uid": source["uid"]}
    board = dashboard()
    assert board["uid"] and board["title"]
    graphs = [panel for panel in panels() if panel["type"] != "row"]
    assert len(graphs) >= 7
    assert len({panel["id"] for panel in panels()}) == len(panels())
    for panel in graphs:
        assert panel.get("datasource") == expected, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", expected) == expected, panel["title"]
            assert target["expr"].strip() and target["refId"], panel["title"]


def test_compose_runs_the_monitoring_profile_with_these_files() -> None:
    services = compose_raw()["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    for service in (prometheus, grafana):
        assert service["profiles"] == ["monitoring"]
        assert ":" in service["image"] and not service["image"].endswith(":latest")
    mounts = {
        service: {
            volume.split(":")[0]: volume.split(":")[1]
            for volume in services[service]["volumes"]
            if volume.startswith("./")
        }
        for service in ("prometheus", "grafana")
    }
    for source in (*mounts["prometheus"], *mounts["grafana"]):
        assert (ROOT / source).exists(), source
    config_dir = mounts["prometheus"]["./deploy/prometheus"]
    assert f"--config.file={config_dir}/{PROMETHEUS_CONFIG.name}" in prometheus["command"]
    assert mounts["grafana"]["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    assert provider["options"]["path"] == mounts["grafana"]["./deploy/grafana/dashboards"]
    # Grafana reaches Prometheus by its compose service name, on its default port.
    assert provisioned_datasource()["url"] == "http://prometheus:9090"


# --- promtool ---------------------------------------------------------------


def run_promtool(*args: str) -> str:
    result = subprocess.run(
        [binaries.path("promtool"), *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output, output
    return output


@pytest.mark.promtool
def test_promtool_checks_the_rules() -> None:
    output = run_promtool("check", "rules", ALERTS.name)
    assert f"{len(ALERT_NAMES)} rules found" in output


@pytest.mark.promtool
def test_promtool_checks_the_configuration_with_its_rules() -> None:
    output = run_promtool("check", "config", PROMETHEUS_CONFIG.name)
    assert "1 rule files found" in output


@pytest.mark.promtool
def test_promtool_runs_the_rule_unit_tests() -> None:
    tested = {
        case["alertname"]
        for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert {"ShopifyDeliveryFailureRatioHigh", "ShopifyDeliveriesUnavailable"} <= tested
    run_promtool("test", "rules", ALERTS_TEST.name)
