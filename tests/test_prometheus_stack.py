"""A real Prometheus, started from the config and rules the chart renders for its bundled
Prometheus (scrape targets rewritten to loopback), scrapes a running obs-stack: every
target up, every rule group loaded and evaluated healthy, no alert raised while the fleet
is well, and every dashboard query valid PromQL.
"""

from __future__ import annotations

import json
import re
import os
import signal
import string
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from shipping import (
    CHART_TESTS,
    NAMESPACE,
    RELEASE,
    ROLES,
    free_port,
    one,
    prometheus_yml,
    release_binary,
    render,
    rules_file,
    run,
    tool,
    wait_until,
)

pytestmark = pytest.mark.timeout(1800)

CHART_VALUES = {
    "prometheus": {"enabled": True, "scrapeInterval": "1s", "scrapeTimeout": "1s", "evaluationInterval": "1s"},
}


def stop(process: subprocess.Popen, timeout: float = 15) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=timeout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """obs-stack on loopback, every role with its own port and METRICS_PORT."""
    binary = release_binary("obs-stack")
    state = tmp_path_factory.mktemp("obs-stack")
    ports = {role: (free_port(), free_port()) for role in ROLES}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOST": "127.0.0.1",
        "STATE_DIR": str(state),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "warn",
        "TRACE_ID": "prometheus-stack-test",
        "DOCKER_WATCH": "off",
    }
    for role, (port, metrics_port) in ports.items():
        env[f"{role.upper()}_PORT"] = str(port)
        env[f"{role.upper()}_METRICS_PORT"] = str(metrics_port)
    log = (state / "obs-stack.log").open("w")
    process = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=state)
    try:
        for role, (port, _) in ports.items():
            wait_until(
                lambda: process.poll() is None and requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200,
                30,
                f"obs-stack's {role} to be ready",
            )
        yield ports
    finally:
        code = stop(process)
        log.close()
        assert code == 0, (state / "obs-stack.log").read_text()


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory):
    """Prometheus with the chart's prometheus.yml and rules; targets moved to loopback."""
    folder = tmp_path_factory.mktemp("prometheus")
    objects = render(CHART_VALUES)
    config = yaml.safe_load(prometheus_yml(objects))
    port = free_port()
    rewritten = 0
    for job in config["scrape_configs"]:
        (static,) = job["static_configs"]
        if job["job_name"] == "prometheus":
            static["targets"] = [f"127.0.0.1:{port}"]
            continue
        role = job["job_name"].removeprefix(f"{RELEASE}-").removesuffix("-metrics")
        # The chart's target is the role's metrics Service on its METRICS_PORT.
        (target,) = static["targets"]
        assert target.startswith(f"{RELEASE}-{role}-metrics.{NAMESPACE}.svc.")
        static["targets"] = [f"127.0.0.1:{stack[role][1]}"]
        rewritten += 1
    assert rewritten == len(ROLES)
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    (folder / "obs-fleet.rules.yml").write_text(rules_file(objects))
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: process.poll() is None and requests.get(f"{base}/-/ready", timeout=1).status_code == 200,
            60,
            "Prometheus to be ready",
        )
        yield base
    finally:
        stop(process, timeout=30)
        log.close()


def api(base: str, path: str, **params) -> dict:
    response = requests.get(f"{base}/api/v1/{path}", params=params, timeout=5)
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def test_prometheus_scrapes_every_role_and_itself(prometheus):
    def all_up():
        targets = api(prometheus, "targets")["activeTargets"]
        return targets if len(targets) == len(ROLES) + 1 and all(t["health"] == "up" for t in targets) else None

    targets = wait_until(all_up, 60, "every target up", interval=0.5)
    assert sorted(t["labels"]["job"] for t in targets) == sorted(["prometheus"] + [f"{RELEASE}-{r}-metrics" for r in ROLES])
    assert {t["labels"]["namespace"] for t in targets} == {NAMESPACE}
    assert requests.get(f"{prometheus}/-/healthy", timeout=2).status_code == 200

    def build_info():
        result = api(prometheus, "query", query="hello_ai_build_info")["result"]
        return result if len(result) == len(ROLES) else None

    result = wait_until(build_info, 30, "hello_ai_build_info from every role", interval=0.5)
    # honor_labels keeps the role's own labels; the job names the role's metrics Service.
    assert sorted((s["metric"]["role"], s["metric"]["job"]) for s in result) == sorted(
        (role, f"{RELEASE}-{role}-metrics") for role in ROLES
    )
    up = api(prometheus, "query", query="hello_ai_up")["result"]
    assert len(up) == len(ROLES) and all(s["value"][1] == "1" for s in up)


def test_the_charts_rules_load_and_evaluate_healthy(prometheus):
    def evaluated():
        groups = api(prometheus, "rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = rules and all(rule["lastEvaluation"] and not rule["lastEvaluation"].startswith("0001") for rule in rules)
        return groups if done else None

    groups = wait_until(evaluated, 60, "every rule to be evaluated once", interval=0.5)
    assert sorted(g["name"] for g in groups) == sorted([f"obs-fleet.{r}" for r in ROLES] + ["obs-fleet.fleet"])
    unhealthy = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert unhealthy == []
    alerts = sorted(r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting")
    assert alerts.count("ServiceDown") == alerts.count("HighLatency") == alerts.count("HighErrorRate") == len(ROLES)
    assert {"HeartbeatLost", "CriticalIncidentOpen", "WatcherCriticalIssuesOpen"} <= set(alerts)


def test_no_alert_is_raised_while_the_fleet_is_well(prometheus):
    wait_until(
        lambda: len(api(prometheus, "query", query="up == 1")["result"]) == len(ROLES) + 1,
        60,
        "every target up",
        interval=0.5,
    )
    wait_until(
        lambda: api(prometheus, "query", query="count(prometheus_rule_group_iterations_total) >= 1"),
        60,
        "the rule groups to run",
        interval=0.5,
    )
    # ServiceDown has `or absent(up{...})`, pending until a role's first scrape: wait for it
    # to clear, then nothing may be pending or firing.
    wait_until(lambda: api(prometheus, "alerts")["alerts"] == [], 30, "no pending or firing alert", interval=0.5)
    assert api(prometheus, "query", query="ALERTS")["result"] == []


def test_every_dashboard_query_is_valid_promql(prometheus):
    objects = render(CHART_VALUES)
    dashboard = json.loads(one(objects, "ConfigMap", f"{RELEASE}-dashboard")["data"]["obs-fleet.json"])
    substitutions = {"$namespace": NAMESPACE, "$job": ".+", "$__rate_interval": "1m"}
    answered = 0
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            query = target["expr"]
            for variable, value in substitutions.items():
                query = query.replace(variable, value)
            assert "$" not in query, query
            data = api(prometheus, "query", query=query)
            answered += bool(data["result"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            expression = variable["query"]["query"].replace("$namespace", NAMESPACE)
            metric = expression.removeprefix("label_values(").rsplit(",", 1)[0]
            assert api(prometheus, "series", **{"match[]": metric}), expression
    # The fleet-wide panels are live data, not just valid syntax.
    assert answered >= 6


# PromQL's own words: functions and aggregations are told apart by the "(" after them.
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects (label matchers, groupings, ranges and
    function names left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        if text[match.end():].lstrip().startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def exported_names(port: int) -> set[str]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


@pytest.fixture(scope="module")
def after_a_missed_heartbeat(stack):
    """The stack once a service stopped heartbeating, so the watcher's issue gauges and the
    curator's incident gauges have series. Module-scoped and first asked for after the
    "no alert while the fleet is well" test: from here on the fleet is not well."""
    watcher_port = stack["watcher"][0]
    beat = requests.post(
        f"http://127.0.0.1:{watcher_port}/heartbeat",
        json={"service": "metrics-check", "timeout_seconds": 0.5},
        timeout=5,
    )
    assert beat.status_code == 200, beat.text
    wait_until(
        lambda: "watcher_issues_open" in exported_names(stack["watcher"][1]),
        30,
        "the missed heartbeat to be an open issue",
        interval=0.5,
    )
    return stack


def test_every_metric_the_rules_and_dashboard_query_is_exported_by_a_role(after_a_missed_heartbeat):
    """Rules and panels that query a name no role exports never fire and never draw: the
    names are taken from the rendered chart and looked up in what the running roles export,
    after a service stopped heartbeating (so the issue and incident gauges have series)."""
    stack = after_a_missed_heartbeat
    exported = set().union(*(exported_names(metrics_port) for _, metrics_port in stack.values()))

    objects = render(CHART_VALUES)
    rules = yaml.safe_load(rules_file(objects))
    used = {name: f"rule {rule.get('alert') or rule.get('record')}"
            for group in rules["groups"] for rule in group["rules"] for name in metric_names(rule["expr"])}
    dashboard = json.loads(one(objects, "ConfigMap", f"{RELEASE}-dashboard")["data"]["obs-fleet.json"])
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            query = target["expr"].replace("$__rate_interval", "1m")
            used.update({name: f"panel {panel['title']}" for name in metric_names(query)})
    assert "curator_incidents_open" in used and "watcher_issues_open" in used, sorted(used)
    # `up` is Prometheus' own, per target.
    missing = {name: where for name, where in used.items() if name not in exported and name != "up"}
    assert missing == {}, f"queried but exported by no role: {missing}"


# ---- promtool unit tests fed with what the roles really export ------------------------------

SERIES = re.compile(r"^(?P<indent>\s*- series: ')(?P<name>\$\{[^}]*\}|[^'{]*)(?P<labels>\{[^']*\})?'", re.MULTILINE)


def scraped_series(prometheus: str) -> dict[str, set[str]]:
    """Metric name -> label names, over every series the real Prometheus has scraped from
    the roles' metrics jobs (with the target labels it adds: job, namespace, instance; and
    its own `up` per target). Taken once the set of names has stopped growing for a few
    scrapes, so series born from the missed heartbeat (issue, incident) are in."""
    def names() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for labels in api(prometheus, "series", **{"match[]": f'{{job=~"{RELEASE}-.+-metrics"}}'}):
            found.setdefault(labels.pop("__name__"), set()).update(labels)
        return found

    wait_until(lambda: "watcher_issues_open" in names(), 30, "Prometheus to scrape the open issue", interval=0.5)
    settled, last, quiet_since = None, None, time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = names()
        if current != last:
            last, quiet_since = current, time.monotonic()
        elif time.monotonic() - quiet_since >= 4:  # four 1 s scrapes with nothing new
            settled = current
            break
        time.sleep(0.5)
    assert settled, "the scraped series never settled"
    return settled


def fill_in(template_path: Path, scraped: dict[str, set[str]], **extra: str) -> str:
    """A promtool test file with every series name taken from `scraped`: a name no role
    exports is a KeyError naming it. Names are never typed into the files (each series is a
    placeholder), and a series' label names must be ones the scraped metric has."""
    text = template_path.read_text()
    for match in SERIES.finditer(text):
        assert match["name"].startswith("${"), f"{template_path.name}: a series typed by hand: {match.group(0)}"
    try:
        filled = string.Template(text).substitute({name: name for name in scraped} | extra)
    except KeyError as error:
        raise AssertionError(f"{template_path.name} feeds {error.args[0]!r}, which no running role exports") from None
    for match in SERIES.finditer(filled):
        labels = set(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)\s*=', match["labels"] or ""))
        unknown = labels - scraped[match["name"]]
        assert not unknown, f"{template_path.name}: {match['name']} has no label {sorted(unknown)} (scraped: {sorted(scraped[match['name']])})"
    return filled


def test_the_series_check_refuses_an_unexported_name_a_typed_name_and_an_unknown_label(tmp_path):
    scraped = {"up": {"job", "instance"}, "real_metric": {"kind"}}
    template = tmp_path / "t.yml"
    template.write_text("      - series: '${real_metric}{kind=\"a\"}'\n")
    assert "real_metric{" in fill_in(template, scraped)
    for text, message in (
        ("      - series: '${obs_curator_incidents_open}{kind=\"a\"}'\n", "which no running role exports"),
        ("      - series: 'real_metric{kind=\"a\"}'\n", "typed by hand"),
        ("      - series: '${real_metric}{severity=\"a\"}'\n", "has no label ['severity']"),
    ):
        template.write_text(text)
        with pytest.raises(AssertionError, match=re.escape(message)):
            fill_in(template, scraped)


def test_alerts_fire_when_they_should_and_not_otherwise(prometheus, after_a_missed_heartbeat, tmp_path):
    """promtool test rules: tests/chart/fleet_alerts_test.yml and, for every role,
    tests/chart/role_alerts_test.yml, against the rules the chart renders by default, with
    the series names and label names the running roles export."""
    scraped = scraped_series(prometheus)
    objects = render({"prometheus": {"enabled": True}})
    (tmp_path / "obs-fleet.rules.yml").write_text(rules_file(objects))
    up = {name: name for name in scraped}["up"]
    test_files = [tmp_path / "fleet_alerts_test.yml"]
    test_files[0].write_text(fill_in(CHART_TESTS / "fleet_alerts_test.yml", scraped))
    for index, role in enumerate(ROLES):
        others = "\n".join(
            f"      - series: '{up}{{job=\"{RELEASE}-{other}-metrics\",namespace=\"{NAMESPACE}\",instance=\"10.0.1.{i}:900{i}\"}}'\n"
            f"        values: '1x20'"
            for i, other in enumerate(ROLES, start=1)
            if other != role
        )
        text = fill_in(CHART_TESTS / "role_alerts_test.yml", scraped, role=role, job=f"{RELEASE}-{role}-metrics", other_roles_up=others)
        path = tmp_path / f"role_{index}_{role}_test.yml"
        path.write_text(text)
        test_files.append(path)
    result = run([tool("promtool"), "test", "rules", *map(str, test_files)], cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(test_files), result.stdout
