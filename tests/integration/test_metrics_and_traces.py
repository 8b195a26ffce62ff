"""Metrics and traces on the real stack: each service's /metrics holds what
deploy/prometheus's rules and deploy/grafana's dashboard ask for, and one
write is one trace from the registrar through Kafka's record headers to the
promoter's decision and the projector's commit, received over real OTLP/HTTP
by a tiny collector in this test."""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from modelog_platform import services
from modelog_platform.identity.dev import DevIssuer
from modelog_platform.settings import LocalStack, ServicePorts
from tests.conftest import port

DEPLOY = Path(__file__).parents[2] / "deploy"
TRACED = ("projector", "promoter", "registrar")  # readers first, as `modelog up` starts them
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: keeps every span it is sent, decoded."""

    def __init__(self, address: tuple[str, int]):
        super().__init__(address, Receive)
        self.spans: list[dict] = []
        self.lock = threading.Lock()


class Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            for resource in request.resource_spans:
                service = next(a.value.string_value for a in resource.resource.attributes if a.key == "service.name")
                for scope in resource.scope_spans:
                    self.server.spans.extend({
                        "service": service, "name": s.name, "trace": s.trace_id.hex(), "span": s.span_id.hex(),
                        "parent": s.parent_span_id.hex(),
                        "attributes": {a.key: a.value.string_value for a in s.attributes}} for s in scope.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def collector():
    server = Collector(("127.0.0.1", port(21460)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def restart(local: LocalStack, ports: ServicePorts, env: dict[str, str] | None) -> None:
    for service in TRACED:
        services.stop(service, local)
    for service in TRACED:
        services.start(service, local, env=env)
        services.wait_ready(service, local, ports)


@pytest.fixture(scope="module")
def traced_stack(stack, collector):
    """The write path's services exporting their spans to `collector`; as before afterwards."""
    local = LocalStack()
    restart(local, stack, {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}",
                           "OTEL_BSP_SCHEDULE_DELAY": "100"})
    yield stack
    restart(local, stack, None)


def create_model(stack: ServicePorts) -> str:
    name = f"traced-{uuid4().hex[:8]}"
    token = DevIssuer.local().issue("ci-pipeline", ("publisher",), ())[1]
    response = httpx.post(stack.url("registrar") + "/v1/models", json={"name": name},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 201, response.text
    return name


def spans_until(collector: Collector, wanted: set[str], trace: str | None = None, wait_s: float = 20) -> list[dict]:
    """The spans received, once every name in `wanted` is among them (in `trace`, if given)."""
    deadline = time.monotonic() + wait_s
    while True:
        with collector.lock:
            spans = [s for s in collector.spans if trace is None or s["trace"] == trace]
        if wanted <= {s["name"] for s in spans} or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)


def test_one_write_is_one_trace_through_the_promoter_and_the_projector(traced_stack, collector):
    name = create_model(traced_stack)
    writes = [s for s in spans_until(collector, {"registrar write"})
              if s["name"] == "registrar write" and s["attributes"].get("modelog.model") == name]
    assert len(writes) == 1, writes
    write = writes[0]

    spans = spans_until(collector, {"registrar answer", "promoter decide", "projector commit"}, write["trace"])
    by_name = {s["name"]: s for s in spans}
    assert {"registrar answer", "promoter decide", "projector commit"} <= by_name.keys(), by_name.keys()
    assert by_name["promoter decide"]["service"] == "modelog-promoter"
    assert by_name["promoter decide"]["attributes"]["modelog.model"] == name
    assert by_name["projector commit"]["service"] == "modelog-projector"
    # Each hop is a child of the one before it: the context rode in the record headers.
    assert by_name["promoter decide"]["parent"] == write["span"]
    assert by_name["projector commit"]["parent"] == by_name["promoter decide"]["span"]
    assert by_name["registrar answer"]["parent"] == write["span"]


def exposed(url: str) -> dict[str, list]:
    """Metric family name -> its samples, as a scrape of `url`/metrics reads them."""
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def used_metrics() -> set[str]:
    """Every modelog_ metric the alert rules and the dashboard query, as family names."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "modelog.json").read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    names = {found for expr in expressions for found in re.findall(r"\bmodelog_[a-z_]+", expr)}
    return {base for name in names for base in [next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)]}


def test_every_metric_the_rules_and_dashboard_use_is_one_the_services_expose(stack):
    create_model(stack)  # a write through every service
    scraped = {service: exposed(stack.url(service)) for service in ("registrar", "promoter", "projector", "auditor")}
    everything = set().union(*scraped.values())
    assert used_metrics() - everything == set()
    # Process metrics come with every service.
    assert all("process_resident_memory_bytes" in families for families in scraped.values())


def test_a_write_shows_in_requests_decisions_latency_and_lag(stack):
    create_model(stack)
    registrar = exposed(stack.url("registrar"))
    assert any(s.labels == {"route": "/v1/models", "method": "POST", "status": "201"} and s.value >= 1
               for s in registrar["modelog_http_requests"])
    promoter = exposed(stack.url("promoter"))
    assert any(s.labels == {"outcome": "accepted", "reason": ""} and s.value >= 1
               for s in promoter["modelog_decisions"])
    assert any(s.name == "modelog_command_to_event_seconds_count" and s.value >= 1
               for s in promoter["modelog_command_to_event_seconds"])
    assert {s.labels["consumer"] for s in promoter["modelog_consumer_lag_records"]} == {"promoter"}
    for projection in ("projector", "auditor"):
        lag = exposed(stack.url(projection))["modelog_projection_lag_events"]
        assert [s.labels for s in lag] == [{"projection": projection}]
    auditor = exposed(stack.url("auditor"))
    assert [s.value for s in auditor["modelog_audit_seal_period_seconds"]] != []
