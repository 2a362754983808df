"""The production deployment files agree with each other and with the code.

No Docker engine is needed: docker-compose.yml, the Dockerfile, the Prometheus config and rules
and the Grafana provisioning are parsed and cross-checked (service names, ports, mounts).
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "cityops.rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "cityops.json"
GRAFANA = ROOT / "deploy" / "grafana" / "provisioning"
METRICS_SOURCE = ROOT / "services" / "common" / "metrics.py"

APP_SERVICES = {
    "district": "CITYOPS_DISTRICT_PORT",
    "hotspots": "CITYOPS_HOTSPOTS_PORT",
    "street": "CITYOPS_STREET_PORT",
}
APP_DEFAULT_PORTS = {
    "CITYOPS_DISTRICT_PORT": 8080,
    "CITYOPS_HOTSPOTS_PORT": 8082,
    "CITYOPS_STREET_PORT": 8081,
}
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _interpolate(value: object) -> str:
    """Resolve `${NAME:-default}` to its default and required `${NAME:?msg}` to a placeholder."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        return f"<{name}>" if "?" in op else arg

    return _VAR.sub(one, str(value))


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: _interpolate(v) for k, v in env.items()}


def _app_port(services: dict[str, dict[str, Any]], name: str) -> int:
    var = APP_SERVICES[name]
    return int(_env(services[name]).get(var, APP_DEFAULT_PORTS[var]))


def _listeners(spec: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` -> {NAME: (host, port)}."""
    out = {}
    for item in spec.split(","):
        name, address = item.strip().split("://", 1)
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def _kafka_address(services: dict[str, dict[str, Any]]) -> tuple[str, int]:
    """The (host, port) the kafka service advertises to the other containers, by its own name."""
    env = _env(services["kafka"])
    bound = _listeners(env["KAFKA_LISTENERS"])
    names = {"kafka", services["kafka"].get("hostname", "kafka")}
    inside = [
        (listener, host, port)
        for listener, (host, port) in _listeners(env["KAFKA_ADVERTISED_LISTENERS"]).items()
        if host in names
    ]
    assert len(inside) == 1, f"one listener must be advertised as the service name: {inside}"
    listener, host, port = inside[0]
    assert bound[listener][1] == port, f"{listener} listens on {bound[listener]}, not {port}"
    return host, port


def _postgres(services: dict[str, dict[str, Any]]) -> dict[str, str | int]:
    env = _env(services["postgres"])
    return {
        "port": int(env.get("PGPORT", 5432)),
        "user": env.get("POSTGRES_USER", "postgres"),
        "password": env["POSTGRES_PASSWORD"],
        "db": env.get("POSTGRES_DB", env.get("POSTGRES_USER", "postgres")),
    }


def _bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(repo path, container path) for every bind mount of a repository file or folder."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") != "bind":
                continue
            source, target = volume["source"], volume["target"]
        else:
            source, target = _interpolate(volume).split(":")[:2]
            if not source.startswith((".", "/")):
                continue  # a named volume
        mounts.append(((ROOT / source).resolve(), target))
    return mounts


def _host_for(service: dict[str, Any], container_path: str) -> Path:
    """The repository path mounted at (or above) a container path."""
    for source, target in _bind_mounts(service):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / Path(container_path).relative_to(target)
    raise AssertionError(f"nothing from the repository is mounted at {container_path}")


def _cityops_metrics(expr: str) -> list[str]:
    return re.findall(r"\bcityops_[a-z_]+", expr)


def _exported(metric: str) -> bool:
    """True when services/common/metrics.py defines the metric a series name belongs to."""
    source = METRICS_SOURCE.read_text(encoding="utf-8")
    base = re.sub(r"_(total|bucket|count|sum)$", "", metric)
    return f'"{base}"' in source or f'"{metric}"' in source


# -- docker-compose.yml ------------------------------------------------------------------------


def test_compose_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    expected = {"kafka", "postgres", "bootstrap", "district", "hotspots", "street"}
    assert expected | {"prometheus", "grafana"} <= services.keys()


def test_the_hotspot_loops_run_once_in_their_own_service(
    services: dict[str, dict[str, Any]],
) -> None:
    assert _env(services["district"])["CITYOPS_HOTSPOTS_IN_DISTRICT"] == "0"
    assert services["hotspots"]["command"] == ["hotspots"]


def test_kafka_runs_kraft_without_zookeeper(services: dict[str, dict[str, Any]]) -> None:
    env = _env(services["kafka"])
    roles = {r.strip() for r in env["KAFKA_PROCESS_ROLES"].split(",")}
    assert roles == {"broker", "controller"}
    assert not any(
        "zookeeper" in name or "zookeeper" in str(s.get("image", ""))
        for name, s in services.items()
    )
    assert not any("ZOOKEEPER" in key for key in env)
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in _listeners(env["KAFKA_LISTENERS"])
    voter_id, _, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert voter_id == str(env["KAFKA_NODE_ID"])
    assert int(voter.rpartition(":")[2]) == _listeners(env["KAFKA_LISTENERS"])[controller][1]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"  # a single broker
    assert "healthcheck" in services["kafka"]


@pytest.mark.parametrize("name", ["bootstrap", "district", "hotspots", "street"])
def test_cityops_services_reach_kafka_and_postgres(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = _env(services[name])
    kafka_host, kafka_port = _kafka_address(services)
    assert env["CITYOPS_KAFKA_BOOTSTRAP"] == f"{kafka_host}:{kafka_port}"

    pg = _postgres(services)
    url = urlsplit(env["CITYOPS_DATABASE_URL"])
    assert url.scheme in {"postgresql", "postgres"}
    assert url.hostname == "postgres"
    assert (url.port or 5432) == pg["port"]
    assert (url.username, url.password) == (pg["user"], pg["password"])
    assert url.path.lstrip("/") == pg["db"]

    assert env["CITYOPS_HTTP_HOST"] == "0.0.0.0"
    assert env["CITYOPS_PHONE_KEY"], "every container must share one phone key"


def test_one_phone_key_for_every_container(services: dict[str, dict[str, Any]]) -> None:
    raw = {services[n]["environment"]["CITYOPS_PHONE_KEY"] for n in ("bootstrap", *APP_SERVICES)}
    assert len(raw) == 1


def test_startup_order(services: dict[str, dict[str, Any]]) -> None:
    assert services["bootstrap"]["command"] == ["bootstrap"]
    for dep in ("kafka", "postgres"):
        assert services["bootstrap"]["depends_on"][dep]["condition"] == "service_healthy"
        assert "healthcheck" in services[dep]
    for name in APP_SERVICES:
        assert services[name]["command"] == [name]
        condition = services[name]["depends_on"]["bootstrap"]["condition"]
        assert condition == "service_completed_successfully"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_ports_and_readiness_probe(services: dict[str, dict[str, Any]], name: str) -> None:
    port = _app_port(services, name)
    published = [_interpolate(p).rpartition(":")[2] for p in services[name]["ports"]]
    assert str(port) in published
    probe = " ".join(services[name]["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/readyz" in probe or f"localhost:{port}/readyz" in probe
    assert "container_name" not in services[name], "a fixed name prevents scaling out"


def test_every_mounted_repository_file_exists(services: dict[str, dict[str, Any]]) -> None:
    mounts = [m for s in services.values() for m in _bind_mounts(s)]
    assert mounts
    for source, target in mounts:
        assert source.exists(), f"{source} (mounted at {target}) is missing"
        assert ROOT in source.parents, f"{source} is outside the repository"


def test_images_are_built_from_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name in ("bootstrap", *APP_SERVICES):
        build = services[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


# -- Dockerfile --------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_dockerfile_entrypoint_is_cityops() -> None:
    instructions = _instructions()
    entrypoint = [arg for op, arg in instructions if op == "ENTRYPOINT"][-1]
    argv = json.loads(entrypoint) if entrypoint.startswith("[") else shlex.split(entrypoint)
    assert argv == ["cityops"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "cityops" in scripts["scripts"]


def test_dockerfile_installs_the_project_as_a_non_root_user() -> None:
    instructions = _instructions()
    assert next(arg for op, arg in instructions if op == "FROM").startswith("python:3.11-slim")
    user = [arg for op, arg in instructions if op == "USER"][-1]
    assert user not in {"root", "0"}
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert re.search(r"pip install (-e )?\.(\s|$)", runs), "install the project itself, no extras"
    copied = " ".join(arg for op, arg in instructions if op == "COPY")
    for needed in (
        "pyproject.toml",
        "contracts",
        "services",
        "deploy/migrations",
        "deploy/reference",
    ):
        assert needed in copied


# -- Prometheus --------------------------------------------------------------------------------


def _scrape_targets(job: dict[str, Any]) -> list[tuple[str, int]]:
    targets = []
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, _, port = target.rpartition(":")
            targets.append((host, int(port)))
    for dns in job.get("dns_sd_configs", []):
        targets += [(name, int(dns["port"])) for name in dns["names"]]
    return targets


def test_prometheus_scrapes_both_services(services: dict[str, dict[str, Any]]) -> None:
    config = _load_yaml(PROMETHEUS)
    assert config["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"cityops-district", "cityops-hotspots", "cityops-street"} <= jobs.keys()
    for name in APP_SERVICES:
        targets = _scrape_targets(jobs[f"cityops-{name}"])
        assert targets == [(name, _app_port(services, name))]
        assert jobs[f"cityops-{name}"].get("metrics_path", "/metrics") == "/metrics"


def test_prometheus_mounts_its_config_and_rules(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    assert _host_for(prometheus, "/etc/prometheus/prometheus.yml") == PROMETHEUS.resolve()
    config = _load_yaml(PROMETHEUS)
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    for pattern in config["rule_files"]:
        folder = _host_for(prometheus, str(Path(pattern).parent))
        assert RULES.resolve() in {p.resolve() for p in folder.glob(Path(pattern).name)}


def test_rules() -> None:
    rules = [r for group in _load_yaml(RULES)["groups"] for r in group["rules"]]
    by_name = {r.get("alert") or r.get("record"): r for r in rules}
    assert (
        "rate(cityops_intake_messages_total[5m])"
        in by_name["cityops:intake_messages:rate5m"]["expr"]
    )
    assert re.search(r"\bup\b.*== 0", by_name["CityOpsServiceDown"]["expr"])
    assert by_name["CityOpsServiceDown"]["for"] == "2m"
    assert "increase(cityops_deadletters_total[10m])" in by_name["CityOpsDeadLetters"]["expr"]
    for rule in rules:
        for metric in _cityops_metrics(rule["expr"]):
            assert _exported(metric), f"{metric} is not defined in {METRICS_SOURCE.name}"


# -- Grafana -----------------------------------------------------------------------------------


def test_grafana_provisioning(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    assert _host_for(grafana, "/etc/grafana/provisioning") == GRAFANA.resolve()

    datasources = _load_yaml(GRAFANA / "datasources" / "prometheus.yml")["datasources"]
    (prometheus,) = [d for d in datasources if d["type"] == "prometheus"]
    url = urlsplit(prometheus["url"])
    listen = [
        a
        for a in services["prometheus"].get("command", [])
        if a.startswith("--web.listen-address=")
    ]
    port = int(listen[-1].rpartition(":")[2]) if listen else 9090
    assert (url.hostname, url.port) == ("prometheus", port)

    providers = _load_yaml(GRAFANA / "dashboards" / "cityops.yml")["providers"]
    (provider,) = [p for p in providers if p["type"] == "file"]
    folder = _host_for(grafana, provider["options"]["path"])
    assert folder.resolve() == DASHBOARD.parent.resolve()

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert uids == {prometheus["uid"]}


def test_dashboard_panels_query_cityops_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    assert len(panels) >= 5
    seen = set()
    for panel in panels:
        exprs = [t["expr"] for t in panel.get("targets", [])]
        assert exprs, f"panel {panel['title']!r} has no query"
        for expr in exprs:
            metrics = _cityops_metrics(expr)
            assert metrics, f"panel {panel['title']!r} queries no cityops_ metric: {expr}"
            for metric in metrics:
                assert _exported(metric), f"{metric} is not defined in {METRICS_SOURCE.name}"
            seen.update(metrics)
    assert {
        "cityops_intake_messages_total",
        "cityops_tasks_dispatched_total",
        "cityops_cases_open",
        "cityops_dispatch_latency_seconds_bucket",
        "cityops_deadletters_total",
    } <= seen


def test_dashboard_recorded_series_are_recorded() -> None:
    """A panel reading a recorded series (level:metric:operation) reads one the rules record."""
    groups = _load_yaml(RULES)["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used.update(re.findall(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b", target["expr"]))
    assert used, "the dashboard reads no recorded series"
    assert used <= recorded, f"not recorded by {RULES.name}: {sorted(used - recorded)}"
