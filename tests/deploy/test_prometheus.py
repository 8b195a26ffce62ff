"""deploy/prometheus: the scrape config and the alert rules pass Prometheus's
own parsers (prometheus-check, built with Go on first use; a broken expression
is shown to fail it), the config scrapes every service at its port, and every
alert is explained in docs/operations.md.
That the services expose every metric the rules use is checked against a
running stack in tests/integration/test_metrics_and_traces.py."""

import subprocess
from pathlib import Path

import yaml

from modelog_platform.settings import ServicePorts
from tests.deploy.rules_checker import prometheus_check

ROOT = Path(__file__).parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
SERVICES = ("registrar", "promoter", "projector", "auditor", "sentinel")


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(prometheus_check()), *args], capture_output=True, text=True)


def test_alert_rules_parse_with_prometheus_rulefmt():
    done = check("rules", str(PROMETHEUS / "alerts.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    assert f"SUCCESS: {sum(len(g['rules']) for g in rules['groups'])} rules found" in done.stdout


def test_a_rule_with_a_broken_expression_fails_the_check_with_the_parse_error(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: g\n    rules:\n"
                      "      - alert: Broken\n        expr: sum by (instance (up)\n")
    done = check("rules", str(broken))
    assert done.returncode != 0
    assert "FAILED" in done.stderr
    assert '"Broken": could not parse expression' in done.stderr
    assert "parse error" in done.stderr


def test_a_scrape_config_prometheus_would_refuse_fails_the_check(tmp_path):
    refused = tmp_path / "prometheus.yml"
    refused.write_text("scrape_configs:\n  - job_name: x\n    scrape_interval: 15 seconds\n"
                       "    static_configs: [{targets: ['x:1']}]\n")
    done = check("config", str(refused))
    assert done.returncode != 0
    assert 'FAILED: parsing YAML file' in done.stderr
    assert '"15 seconds"' in done.stderr


def test_scrape_config_loads_with_prometheus_config_and_scrapes_every_service():
    done = check("config", str(PROMETHEUS / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid prometheus config file syntax" in done.stdout
    assert "SUCCESS: 1 rule files found" in done.stdout  # alerts.yml, checked again through the config
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
