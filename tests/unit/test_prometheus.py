"""The Prometheus configuration and rules pass promtool: syntax, rule checks, rule unit tests
(deploy/prometheus/tests/), and the Grafana queries parse. Needs promtool (tests/promtool.py
installs it or skips)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.promtool import promtool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "cityops.json"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))

pytestmark = pytest.mark.timeout(1200)  # the first test may install promtool


def run(*argv: str | Path) -> str:
    done = subprocess.run(
        [promtool(), *map(str, argv)], capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_config_is_valid_with_its_rules(tmp_path: Path) -> None:
    """The config as deployed, its rule_files pointed at the repository's rules."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(PROMETHEUS / "rules" / "*.yml")]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config), encoding="utf-8")
    output = run("check", "config", checked)
    assert f"SUCCESS: {len(RULES)} rule files found" in output
    for path in RULES:  # promtool reports each file's count after its name
        assert f"{path}\n  SUCCESS: {_count(path)} rules found" in output


def test_rules_are_valid() -> None:
    assert RULES
    output = run("check", "rules", *RULES)
    assert output.count("SUCCESS") == len(RULES)


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    output = run("test", "rules", *RULE_TESTS)
    assert "SUCCESS" in output and "FAILED" not in output


def test_every_alert_and_recording_rule_is_unit_tested() -> None:
    """Each alert is asserted in a rule test, and each recorded series evaluated in one."""
    tested = "\n".join(p.read_text(encoding="utf-8") for p in RULE_TESTS)
    for path in RULES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                if name == "cityops:intake_messages:rate5m":
                    continue  # a plain rate, checked in test_deploy.py
                assert name in tested, f"{name} has no promtool unit test"


def _count(path: Path) -> int:
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return sum(len(g["rules"]) for g in groups)


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Every Grafana query is valid PromQL (Grafana's variables given plausible values)."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    values = {"$__rate_interval": "1m", "$unit": ".*"}
    for variable, value in values.items():
        exprs = [e.replace(variable, value) for e in exprs]
    rules = [{"record": f"dashboard:query:{i}", "expr": e} for i, e in enumerate(exprs)]
    checked = tmp_path / "dashboard.rules.yml"
    checked.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run("check", "rules", checked)
