"""The Grafana dashboard and the Prometheus configuration of the compose stack, checked by reading them
(neither runs on the development machines): every PromQL expression parses and names only metrics the
engine exports (our registry, telemetry/metrics.py, and the Temporal SDK's that telemetry/runtime.py
names), the dashboard has a panel for each thing ops watch, every alert has its runbook entry in
docs/operations.md, and Prometheus scrapes the ports the compose file gives the worker and the API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from telemetry import metrics
from telemetry.runtime import SDK_METRICS

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/callbacks.json").read_text())
DATASOURCES = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
ALERTS = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OPERATIONS = (ROOT / "docs/operations.md").read_text()

# Series Prometheus itself makes for every target it scrapes.
PROMETHEUS_OWN = {"up"}
# Grafana's interval variables, as Prometheus would see them after Grafana replaced them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def exported() -> set[str]:
    """Every series name the engine's processes export."""
    names: set[str] = set()
    for family in metrics.REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in HISTOGRAM_SERIES)
        else:
            names.add(family.name)
        names.update(sample.name for sample in family.samples)
    for name, kind in SDK_METRICS.items():
        names.update(name + suffix for suffix in HISTOGRAM_SERIES) if kind == "histogram" else names.add(name)
    return names


KNOWN = exported() | PROMETHEUS_OWN


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    found: list[promql_parser.VectorSelector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def metric_names(expr: str) -> set[str]:
    return {selector.name for selector in selectors(expr)}


def panels(items: list[dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
    for panel in DASHBOARD["panels"] if items is None else items:
        yield panel
        yield from panels(panel.get("panels") or [])


def dashboard_exprs() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels() for target in panel.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in ALERTS["groups"] for rule in group["rules"]]


def test_the_names_we_check_against_are_real() -> None:
    assert "callbacks_created_total" in KNOWN
    assert "callbacks_time_to_first_contact_seconds_bucket" in KNOWN
    assert "temporal_workflow_task_schedule_to_start_latency_bucket" in KNOWN
    assert "callbacks_created" not in KNOWN  # a counter is scraped with its _total
    assert metric_names('sum(rate(a_total{x="1"}[$__rate_interval])) / on() b or absent(up)') == {
        "a_total",
        "b",
        "up",
    }
    with pytest.raises(ValueError, match=r".+"):
        promql_parser.parse("sum(rate(a_total[5m])")


@pytest.mark.parametrize(("title", "expr"), dashboard_exprs())
def test_every_dashboard_query_parses_and_reads_only_exported_metrics(title: str, expr: str) -> None:
    unknown = metric_names(expr) - KNOWN
    assert not unknown, f"panel {title!r} reads {sorted(unknown)}, which nothing exports"


def test_the_dashboard_shows_what_ops_watch() -> None:
    used = {name for _, expr in dashboard_exprs() for name in metric_names(expr)}
    watched = {
        "open callbacks by status and priority": "callbacks_open",
        "SLA compliance per branch": "callbacks_sla_compliance_by_branch_ratio",
        "SLA breaches over time": "callbacks_sla_outcomes_total",
        "escalations over time": "callbacks_escalations_total",
        "time to first contact": "callbacks_time_to_first_contact_seconds_bucket",
        "Cal.com budget used": "callbacks_calcom_budget_remaining",
        "Cal.com 429s": "callbacks_calcom_rate_limited_total",
        "notification outcomes": "callbacks_notification_deliveries_total",
        "worker task slots": "temporal_worker_task_slots_available",
        "schedule-to-start latency": "temporal_workflow_task_schedule_to_start_latency_bucket",
        "stuck workflows": "callbacks_stuck_workflows",
    }
    missing = {topic: name for topic, name in watched.items() if name not in used}
    assert not missing, f"no panel for {missing}"
    # Every SDK metric the runtime module names is shown (and so checked by test_observability.py).
    assert {name for name in SDK_METRICS if any(u.startswith(name) for u in used)} == set(SDK_METRICS)


def test_the_dashboard_is_well_formed_and_uses_the_provisioned_data_source() -> None:
    (source,) = DATASOURCES["datasources"]
    assert source["type"] == "prometheus"
    prometheus_port = COMPOSE["services"]["prometheus"]["ports"][0].split(":")[-1]
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels():
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        assert panel["targets"], f"{panel['title']} shows nothing"
        assert panel.get("description"), f"{panel['title']} does not say what it shows"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]
    assert DASHBOARD["uid"] == "callbacks-engine"
    assert DASHBOARD["title"] == "Callback engine"


def test_the_alert_rules_parse_read_exported_metrics_and_have_a_runbook() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert {
        "CallbacksWorkerDown",
        "CallbacksStuckWorkflows",
        "CallbacksSlaBreachRateHigh",
        "CalcomRateLimited",
        "NotificationDeliveriesFailing",
    } <= set(names)
    headings = set(re.findall(r"^#### (\w+)$", OPERATIONS, flags=re.MULTILINE))
    for rule in rules:
        unknown = metric_names(rule["expr"]) - KNOWN
        assert not unknown, f"{rule['alert']} reads {sorted(unknown)}, which nothing exports"
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
        assert rule["alert"] in headings, f"docs/operations.md has no runbook entry for {rule['alert']}"


def test_prometheus_scrapes_the_ports_the_compose_file_gives_the_engine() -> None:
    services = COMPOSE["services"]
    ports = {
        "worker": str(services["worker"]["environment"]["CALLBACKS_WORKER_METRICS_PORT"]),
        "api": str(services["api"]["environment"]["CALLBACKS_API_METRICS_PORT"]),
    }
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    scraped = {}
    for job in jobs.values():
        for discovery in job.get("dns_sd_configs", []):
            for name in discovery["names"]:
                scraped[name] = str(discovery["port"])
    assert scraped == ports
    for service in scraped:
        assert str(scraped[service]) in [str(port) for port in services[service]["expose"]]
    # The rules file Prometheus loads is the one in the repository (mounted at the config's folder).
    mounted = dict(tuple(v.split(":")[:2]) for v in services["prometheus"]["volumes"])["./deploy/prometheus"]
    for rule_file in PROMETHEUS["rule_files"]:
        assert rule_file.startswith(mounted + "/")
        assert (ROOT / "deploy/prometheus" / Path(rule_file).name).exists()
    # `up{job=…}` in alerts and panels names jobs that exist.
    exprs = [expr for _, expr in dashboard_exprs()] + [rule["expr"] for rule in alert_rules()]
    for expr in exprs:
        for selector in selectors(expr):
            for matcher in selector.matchers.matchers:
                if matcher.name == "job":
                    assert matcher.value in jobs, f"no scrape job {matcher.value!r}: {expr}"
