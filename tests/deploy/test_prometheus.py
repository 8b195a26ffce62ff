"""deploy/prometheus: the scrape config and the alert rules pass promtool
(Prometheus's own checker, built with Go on first use), the config scrapes
every service at its port, and every alert is explained in docs/operations.md.
That the services expose every metric the rules use is checked against a
running stack in tests/integration/test_metrics_and_traces.py."""

import subprocess
from pathlib import Path

import yaml

from modelog_platform.settings import ServicePorts
from tests.deploy.promtool import promtool

ROOT = Path(__file__).parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
SERVICES = ("registrar", "promoter", "projector", "auditor", "sentinel")


def check(*args: str) -> str:
    done = subprocess.run([str(promtool()), "check", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_alert_rules_pass_promtool():
    assert "SUCCESS" in check("rules", str(PROMETHEUS / "alerts.yml"))


def test_scrape_config_passes_promtool_and_scrapes_every_service():
    assert "SUCCESS" in check("config", str(PROMETHEUS / "prometheus.yml"))
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    ports = {name.removesuffix("_port"): field.default for name, field in ServicePorts.model_fields.items()
             if name.endswith("_port")}  # the defaults, not the test stack's
    assert {f"{s}:{ports[s]}" for s in SERVICES if s in ports} <= targets
    assert {"registrar", "promoter", "projector", "auditor"} <= ports.keys()


def test_every_alert_is_explained_in_operations_md():
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    operations = (ROOT / "docs" / "operations.md").read_text()
    missing = [r["alert"] for g in rules["groups"] for r in g["rules"] if f"`{r['alert']}`" not in operations]
    assert missing == []
