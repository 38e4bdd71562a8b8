"""charts/obs-fleet: linted and rendered by Helm's own SDK, every object validated, the alert
rules and the bundled Prometheus's config put through promtool.

Value sets live in tests/chart/values/. The promtool unit tests (tests/chart/*_test.yml) run
in tests/test_prometheus_stack.py: their series names come from what the running roles export.
"""

from __future__ import annotations

import base64
import json
import re
import tomllib

import pytest
import yaml

from shipping import (
    CHART,
    NAMESPACE,
    RELEASE,
    ROLES,
    ROOT,
    find,
    helm,
    one,
    prometheus_yml,
    render,
    render_files,
    rules_file,
    run,
    tool,
    validation_errors,
    value_set,
    value_set_names,
)

pytestmark = pytest.mark.timeout(300)

VALUE_SETS = value_set_names()
KNATIVE = "serving.knative.dev/v1"
PG_URL = "postgres://obs_fleet:s3cret-pw@postgres.databases.svc:5432/obs_fleet?sslmode=verify-full"
ROLE_PORTS = {role: (8001 + i, 9001 + i) for i, role in enumerate(ROLES)}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding"}


def values_of(name: str) -> dict:
    """A value set merged over the chart's defaults, as Helm sees it."""
    with helm().Chart.load(str(CHART)) as chart:
        return chart.merge_values(value_set(name))


def workloads(objects: list[dict]) -> list[dict]:
    return find(objects, "Service", api_version=KNATIVE) + find(objects, "Deployment")


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def role_workload(objects: list[dict], role: str, prefix: str = RELEASE) -> dict:
    found = [w for w in workloads(objects) if w["metadata"]["name"] == f"{prefix}-{role}"]
    assert len(found) == 1, f"expected one workload for {role}, found {len(found)}"
    return found[0]


def role_container(objects: list[dict], role: str, prefix: str = RELEASE) -> dict:
    (container,) = pod_spec(role_workload(objects, role, prefix))["containers"]
    return container


def secret_env(container: dict) -> dict[str, dict]:
    """The container's env entries read from Secrets: NAME -> {name, key}."""
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}


def secret_value(objects: list[dict], name: str, key: str) -> str:
    return base64.b64decode(one(objects, "Secret", name)["data"][key]).decode()


def scaled_out(database: dict | None = None, **extra) -> dict:
    """Three instances of every role in both modes (volumes off), with `database`."""
    roles = {r: {"autoscaling": {"maxScale": 3}, "replicas": 3, "persistence": {"enabled": False}} for r in ROLES}
    return {**({"database": database} if database else {}), "roles": roles, **extra}


def rule_groups(objects: list[dict]) -> dict[str, list[dict]]:
    rule = one(objects, "PrometheusRule", RELEASE)
    return {group["name"]: group["rules"] for group in rule["spec"]["groups"]}


# ---- lint and render ----------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_finds_no_errors_or_warnings(name):
    report = helm().lint(str(CHART), value_set(name), kube_version="v1.30.0", namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error
    assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_rendered_object_validates(name):
    objects = render(value_set(name))
    assert objects, "nothing rendered"
    problems = {
        f"{o['apiVersion']} {o['kind']}/{o['metadata']['name']}": errors
        for o in objects
        if (errors := validation_errors(o))
    }
    assert problems == {}
    names = [(o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "two objects share a kind, namespace and name"
    watched = values_of(name)["roles"]["watcher"]["kubernetes"]["namespaces"]
    for o in objects:
        where = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in o["metadata"], where
        elif o["kind"] in ("Role", "RoleBinding"):
            # The watcher's access lives in the namespaces it follows.
            assert o["metadata"]["namespace"] in watched, where
        else:
            assert o["metadata"].get("namespace") == NAMESPACE, where


def test_validation_catches_a_broken_object():
    """The validators are not a rubber stamp: a misplaced field is reported."""
    service = role_workload(render(), "watcher")
    service["spec"]["template"]["spec"]["containers"][0]["port"] = 8001
    assert any("port" in error for error in validation_errors(service))
    config_map = one(render(), "ConfigMap", f"{RELEASE}-watcher")
    config_map["data"]["PORT"] = 8001
    assert validation_errors(config_map)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_notes_name_every_enabled_role(name):
    values = value_set(name)
    notes = render_files(values)[f"{CHART.name}/templates/NOTES.txt"]
    enabled = [r for r in ROLES if values.get("roles", {}).get(r, {}).get("enabled", True)]
    for role in enabled:
        assert f"-{role}.{NAMESPACE}.svc.cluster.local" in notes
    assert "{{" not in notes and "<no value>" not in notes


# ---- roles --------------------------------------------------------------------------------


def test_knative_mode_renders_a_knative_service_per_role():
    objects = render()
    assert find(objects, "Deployment") == []
    for role, (port, metrics_port) in ROLE_PORTS.items():
        service = one(objects, "Service", f"{RELEASE}-{role}", KNATIVE)
        template = service["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        for key in ("min-scale", "max-scale", "metric", "target"):
            assert f"autoscaling.knative.dev/{key}" in annotations
        assert service["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
        (container,) = template["spec"]["containers"]
        assert container["image"] == f"ghcr.io/obs-fleet/obs-fleet/{role}:0.1.0"
        # One declared port (Knative's rule); METRICS_PORT stays undeclared.
        assert container["ports"] == [{"name": "http1", "containerPort": port}]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-{role}"}}]
        env = one(objects, "ConfigMap", f"{RELEASE}-{role}")["data"]
        assert env["ROLE"] == role and env["PORT"] == str(port)
        assert env["METRICS_PORT"] == str(metrics_port) and env["TRACE_ID"] == ""
        assert env["STATE_DIR"] == "/var/lib/obs-fleet"
        if role != "watcher":
            assert env["MONITOR_ENDPOINT"] == f"http://{RELEASE}-watcher.{NAMESPACE}.svc.cluster.local"


def test_the_watcher_never_scales_to_zero():
    for name in VALUE_SETS:
        for service in find(render(value_set(name)), "Service", api_version=KNATIVE):
            if service["metadata"]["name"].endswith("-watcher"):
                annotations = service["spec"]["template"]["metadata"]["annotations"]
                assert int(annotations["autoscaling.knative.dev/min-scale"]) >= 1
    with pytest.raises(helm().HelmValuesError, match=r"roles/watcher/autoscaling/minScale"):
        render({"roles": {"watcher": {"autoscaling": {"minScale": 0}}}})


def test_a_role_may_scale_to_zero_and_then_has_no_service_down_alert():
    objects = render(value_set("knative-docker-watcher"))
    curator = one(objects, "Service", "fleet-curator", KNATIVE)
    annotations = curator["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"
    assert annotations["autoscaling.knative.dev/metric"] == "rps"
    groups = {g["name"]: g["rules"] for g in one(objects, "PrometheusRule", "fleet")["spec"]["groups"]}
    assert "ServiceDown" not in [r["alert"] for r in groups["obs-fleet.curator"]]
    assert "ServiceDown" in [r["alert"] for r in groups["obs-fleet.planner"]]


def test_deployment_mode_renders_deployments_and_services():
    objects = render(value_set("deployment-bundled-prometheus"))
    assert find(objects, "Service", api_version=KNATIVE) == []
    for role, (port, metrics_port) in ROLE_PORTS.items():
        deployment = one(objects, "Deployment", f"{RELEASE}-{role}")
        (container,) = pod_spec(deployment)["containers"]
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
            "http": port,
            "http-metrics": metrics_port,
        }
        # /readyz turns 503 on SIGTERM: the pod leaves the Service before draining.
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > 10
        service = one(objects, "Service", f"{RELEASE}-{role}", "v1")
        assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
        assert service["spec"]["selector"].items() <= pod_labels(deployment).items()
    assert one(objects, "Deployment", f"{RELEASE}-curator")["spec"]["replicas"] == 2


@pytest.mark.parametrize("name", VALUE_SETS)
def test_metrics_services_reach_each_roles_metrics_port(name):
    values = value_set(name)
    objects = render(values)
    prefix = values.get("fullnameOverride", RELEASE)
    for service in find(objects, "Service", api_version="v1"):
        if not service["metadata"]["name"].endswith("-metrics"):
            continue
        role = service["metadata"]["labels"]["app.kubernetes.io/component"]
        (port,) = service["spec"]["ports"]
        assert port["name"] == "http-metrics"
        env = one(objects, "ConfigMap", f"{prefix}-{role}")["data"]
        assert port["targetPort"] == port["port"] == int(env["METRICS_PORT"])
        workload = role_workload(objects, role, prefix)
        assert service["spec"]["selector"].items() <= pod_labels(workload).items()
    enabled = [r for r in ROLES if values.get("roles", {}).get(r, {}).get("enabled", True)]
    assert len([s for s in find(objects, "Service", api_version="v1") if s["metadata"]["name"].endswith("-metrics")]) == len(enabled)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_pod_runs_non_root_on_a_read_only_root_filesystem(name):
    objects = render(value_set(name))
    pods = [(w["metadata"]["name"], pod_spec(w)) for w in workloads(objects)]
    pods += [(p["metadata"]["name"], p["spec"]) for p in find(objects, "Pod")]
    assert len(pods) > len(workloads(objects)), "the helm test Pod is checked too"
    for name, spec in pods:
        # Only the watcher's pods get an API token, and only when they follow Kubernetes.
        assert spec["automountServiceAccountToken"] is (spec.get("serviceAccountName") is not None), name
        if spec.get("serviceAccountName"):
            assert name.endswith("-watcher"), name
        pod_context = spec.get("securityContext", {})
        for container in spec["containers"]:
            context = {**pod_context, **container["securityContext"]}
            where = f"{name}/{container['name']}"
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] != 0, where
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], where
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            # The only writable paths are volumes: the role's state, Prometheus's TSDB (the
            # helm test's healthcheck writes nothing).
            assert mounts & {"/var/lib/obs-fleet", "/prometheus"} or container["name"] == "healthcheck", where


def test_config_changes_roll_the_pods():
    def checksum(values):
        service = one(render(values), "Service", f"{RELEASE}-planner", KNATIVE)
        return service["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"config": {"traceId": "run-42"}})


def test_a_docker_watching_watcher_runs_as_a_deployment_by_the_socket():
    objects = render(value_set("knative-docker-watcher"))
    watcher = one(objects, "Deployment", "fleet-watcher")
    spec = pod_spec(watcher)
    assert spec["nodeSelector"] == {"obs-fleet/docker": "true"}
    assert spec["securityContext"]["supplementalGroups"] == [999]
    assert {"name": "docker-socket", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}} in spec["volumes"]
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "fleet-watcher-state"}} in spec["volumes"]
    assert watcher["spec"]["strategy"] == {"type": "Recreate"}
    env = one(objects, "ConfigMap", "fleet-watcher")["data"]
    assert env["DOCKER_WATCH"] == "on" and env["DOCKER_HOST"] == "unix:///var/run/docker.sock"
    assert env["PROBE_TARGETS"].split(",") == [
        f"{role}=http://fleet-{role}.{NAMESPACE}.svc.cluster.local/healthz"
        for role in sorted(ROLES)
        if role != "watcher"
    ]
    # The others still find it at the same URL, through its Service.
    one(objects, "Service", "fleet-watcher", "v1")
    assert one(objects, "ConfigMap", "fleet-curator")["data"]["MONITOR_ENDPOINT"] == (
        f"http://fleet-watcher.{NAMESPACE}.svc.cluster.local"
    )
    for role in ROLES[1:]:
        container = pod_spec(one(objects, "Service", f"fleet-{role}", KNATIVE))["containers"][0]
        assert container["image"] == f"registry.example.com/obs/{role}:0.1.0-rc1"
        assert container["imagePullPolicy"] == "Always"


def test_api_token_comes_from_a_secret():
    objects = render(value_set("deployment-bundled-prometheus"))
    secret = one(objects, "Secret", f"{RELEASE}-api-token")
    assert "API_TOKEN" in secret["data"]
    for deployment in find(objects, "Deployment"):
        if deployment["metadata"]["name"].endswith("-prometheus"):
            continue
        (container,) = pod_spec(deployment)["containers"]
        assert container["env"][0] == (
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": f"{RELEASE}-api-token", "key": "API_TOKEN"}}}
        )
    objects = render(value_set("deployment-two-roles"))
    assert find(objects, "Secret") == []
    (container,) = pod_spec(one(objects, "Deployment", f"{RELEASE}-curator"))["containers"]
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "obs-fleet-token", "key": "token"}
    assert [d["metadata"]["name"] for d in find(objects, "Deployment")] == [f"{RELEASE}-curator", f"{RELEASE}-watcher"]


def test_without_a_token_given_one_is_generated_and_wired_into_every_role():
    """Safe by default: reads of logs and archived records, and container restarts, are never
    open to whoever reaches a role because nobody set a token."""
    import base64

    objects = render()
    secret = one(objects, "Secret", f"{RELEASE}-api-token")
    token = base64.b64decode(secret["data"]["API_TOKEN"]).decode()
    assert len(token) == 40 and token.isalnum(), token
    roles = find(objects, "Service", api_version=KNATIVE) or find(objects, "Deployment")
    assert roles
    for role in roles:
        if role["metadata"]["name"].endswith("-prometheus"):
            continue
        (container,) = pod_spec(role)["containers"]
        refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"]}
        assert refs["API_TOKEN"] == {"name": f"{RELEASE}-api-token", "key": "API_TOKEN"}, role["metadata"]["name"]
    # Opting out: no token anywhere.
    objects = render({"apiToken": {"generate": False}})
    assert not [s for s in find(objects, "Secret") if s["metadata"]["name"] == f"{RELEASE}-api-token"]
    for role in find(objects, "Service", api_version=KNATIVE) or find(objects, "Deployment"):
        (container,) = pod_spec(role)["containers"]
        assert "API_TOKEN" not in {e["name"] for e in container.get("env", [])}


# ---- state: one instance on a volume, or a shared PostgreSQL ----------------------------------


@pytest.mark.parametrize("mode", ["knative", "deployment"])
def test_by_default_every_role_is_one_instance_with_its_state_on_a_volume(mode):
    """No database: each role keeps SQLite in STATE_DIR on its own ReadWriteOnce PVC, which
    survives the release, and runs as exactly one instance."""
    objects = render({"mode": mode})
    # No database Secret; the only one is the generated API token.
    assert [s["metadata"]["name"] for s in find(objects, "Secret")] == [f"{RELEASE}-api-token"]
    for role in ROLES:
        claim = one(objects, "PersistentVolumeClaim", f"{RELEASE}-{role}-state")
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        workload = role_workload(objects, role)
        spec = pod_spec(workload)
        assert {"name": "state", "persistentVolumeClaim": {"claimName": f"{RELEASE}-{role}-state"}} in spec["volumes"]
        (container,) = spec["containers"]
        assert {"name": "state", "mountPath": "/var/lib/obs-fleet", "readOnly": False} in container["volumeMounts"]
        assert one(objects, "ConfigMap", f"{RELEASE}-{role}")["data"]["STATE_DIR"] == "/var/lib/obs-fleet"
        assert "DATABASE_URL" not in secret_env(container)
        if mode == "knative":
            annotations = workload["spec"]["template"]["metadata"]["annotations"]
            assert annotations["autoscaling.knative.dev/max-scale"] == "1"
            # The non-root role can write to a fresh volume.
            assert spec["securityContext"] == {"fsGroup": 65532}
        else:
            assert workload["spec"]["replicas"] == 1
            # The old pod lets go of the volume before the new one opens the database.
            assert workload["spec"]["strategy"] == {"type": "Recreate"}
    assert len(find(objects, "PersistentVolumeClaim")) == len(ROLES)
    notes = render_files({"mode": mode})[f"{CHART.name}/templates/NOTES.txt"]
    assert "one instance" in notes and "SQLite" in notes


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"autoscaling": {"maxScale": 3}}, "/autoscaling/maxScale': maximum: got 3, want 1"),
        # 0 is Knative's "no limit".
        ({"autoscaling": {"maxScale": 0}}, "/autoscaling/maxScale': minimum: got 0, want 1"),
        ({"replicas": 2}, "/replicas': maximum: got 2, want 1"),
    ],
)
def test_without_a_database_the_schema_refuses_more_than_one_instance(role, setting, message):
    values = {"roles": {role: {**setting, "persistence": {"enabled": False}}}}
    expected = re.escape(f"at '/roles/{role}{message}")
    with pytest.raises(helm().HelmValuesError, match=expected):
        render(values)
    report = helm().lint(str(CHART), values, kube_version="v1.30.0", namespace=NAMESPACE)
    assert any(re.search(expected, error) for error in report["errors"]), report
    # Either kind of database lifts the rule.
    for database in ({"url": PG_URL}, {"existingSecret": "obs-fleet-db"}):
        assert role_workload(render({**values, "database": database}), role)
        report = helm().lint(str(CHART), {**values, "database": database}, kube_version="v1.30.0", namespace=NAMESPACE)
        assert report["errors"] == [], report


@pytest.mark.parametrize("mode", ["knative", "deployment"])
def test_a_database_url_reaches_every_role_from_a_secret_and_roles_scale_out(mode):
    values = scaled_out({"url": PG_URL}, mode=mode)
    objects = render(values)
    assert secret_value(objects, f"{RELEASE}-database", "DATABASE_URL") == PG_URL
    for role in ROLES:
        container = role_container(objects, role)
        assert secret_env(container)["DATABASE_URL"] == {"name": f"{RELEASE}-database", "key": "DATABASE_URL"}
        # The ConfigMap (envFrom) has no say in it.
        assert container["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-{role}"}}]
        workload = role_workload(objects, role)
        assert {"name": "state", "emptyDir": {}} in pod_spec(workload)["volumes"]
        if mode == "knative":
            assert workload["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "3"
            assert "securityContext" not in pod_spec(workload)
        else:
            assert workload["spec"]["replicas"] == 3
            # Leases hand the singleton jobs over: rolling updates for every role.
            assert "strategy" not in workload["spec"]
    assert find(objects, "PersistentVolumeClaim") == []
    assert_secrets_stay_in_secrets(objects, ["s3cret-pw", "postgres://"])
    notes = render_files(values)[f"{CHART.name}/templates/NOTES.txt"]
    assert f"{RELEASE}-database" in notes and "s3cret" not in notes


def assert_secrets_stay_in_secrets(objects: list[dict], needles: list[str]) -> None:
    """No object but a Secret holds any of `needles`; no ConfigMap sets a secret variable."""
    for o in objects:
        if o["kind"] == "Secret":
            continue
        text = json.dumps(o)
        where = f"{o['kind']}/{o['metadata']['name']}"
        for needle in needles:
            assert needle not in text, f"{needle!r} in {where}"
        if o["kind"] == "ConfigMap":
            assert not {"DATABASE_URL", "ARCHIVE_URL", "NOTIFY_WEBHOOKS", "API_TOKEN"} & set(o.get("data", {})), where


def test_webhooks_and_the_database_come_from_the_releases_secrets():
    """deployment-bundled-prometheus: URL, webhooks and token inline, each in a Secret."""
    values = value_set("deployment-bundled-prometheus")
    objects = render(values)
    url = values["database"]["url"]
    webhooks = values["roles"]["synthesizer"]["notify"]["webhooks"]
    assert secret_value(objects, f"{RELEASE}-database", "DATABASE_URL") == url
    assert secret_value(objects, f"{RELEASE}-synthesizer-notify", "NOTIFY_WEBHOOKS") == ",".join(webhooks)
    for role in ROLES:
        env = secret_env(role_container(objects, role))
        assert env["DATABASE_URL"] == {"name": f"{RELEASE}-database", "key": "DATABASE_URL"}
        assert env["API_TOKEN"] == {"name": f"{RELEASE}-api-token", "key": "API_TOKEN"}
        if role == "synthesizer":
            assert env["NOTIFY_WEBHOOKS"] == {"name": f"{RELEASE}-synthesizer-notify", "key": "NOTIFY_WEBHOOKS"}
        else:
            assert "NOTIFY_WEBHOOKS" not in env
    assert_secrets_stay_in_secrets(objects, ["not-a-real-password", "not-a-real-token", "hooks.slack.com", "ops.example.com"])
    assert one(objects, "ConfigMap", f"{RELEASE}-synthesizer")["data"]["NOTIFY_MIN_SEVERITY"] == "critical"
    # Two curators share the database; the archivist keeps its volume (earlier archives
    # found in STATE_DIR are imported into PostgreSQL at start).
    assert one(objects, "Deployment", f"{RELEASE}-curator")["spec"]["replicas"] == 2
    assert [c["metadata"]["name"] for c in find(objects, "PersistentVolumeClaim") if c["metadata"]["name"].endswith("-state")] == [
        f"{RELEASE}-{r}-state" for r in ("archivist", "planner", "synthesizer", "watcher")
    ]


def test_existing_secrets_and_the_servers_ca():
    """knative-postgres: the URL, the webhooks and the CA all from existing Secrets, none
    rendered; the CA mounted where the URL's sslrootcert names it."""
    objects = render(value_set("knative-postgres"))
    assert find(objects, "Secret") == []
    assert find(objects, "PersistentVolumeClaim") == []
    for role in ROLES:
        container = role_container(objects, role)
        env = secret_env(container)
        assert env["DATABASE_URL"] == {"name": "obs-fleet-db", "key": "url"}
        assert ("NOTIFY_WEBHOOKS" in env) == (role == "synthesizer")
        assert {"name": "postgres-ca", "mountPath": "/etc/obs-fleet/postgres-ca", "readOnly": True} in container["volumeMounts"]
        volumes = {v["name"]: v for v in pod_spec(role_workload(objects, role))["volumes"]}
        assert volumes["postgres-ca"]["secret"] == {"secretName": "postgres-ca", "items": [{"key": "root.pem", "path": "ca.crt"}]}
        assert volumes["state"] == {"name": "state", "emptyDir": {}}
    assert secret_env(role_container(objects, "synthesizer"))["NOTIFY_WEBHOOKS"] == {"name": "obs-fleet-webhooks", "key": "NOTIFY_WEBHOOKS"}
    annotations = role_workload(objects, "curator")["spec"]["template"]["metadata"]["annotations"]
    assert (annotations["autoscaling.knative.dev/min-scale"], annotations["autoscaling.knative.dev/max-scale"]) == ("2", "10")
    # 0: no limit, which only a shared database allows.
    annotations = role_workload(objects, "synthesizer")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/max-scale"] == "0"


def test_a_changed_secret_value_rolls_the_pods():
    def checksum(values, role="synthesizer"):
        annotations = role_workload(render(values), role)["spec"]["template"]["metadata"]["annotations"]
        return annotations.get("checksum/secret")

    assert checksum({}) is None
    first = checksum({"database": {"url": PG_URL}})
    assert first and first == checksum({"database": {"url": PG_URL}})
    assert first != checksum({"database": {"url": PG_URL.replace("s3cret", "other")}})
    assert first != checksum({"database": {"url": PG_URL}, "roles": {"synthesizer": {"notify": {"webhooks": ["https://chat.example/hook"]}}}})
    assert checksum({"database": {"url": PG_URL}}, "curator") == checksum(
        {"database": {"url": PG_URL}, "roles": {"synthesizer": {"notify": {"webhooks": ["https://chat.example/hook"]}}}}, "curator"
    )


# ---- monitoring ---------------------------------------------------------------------------


def test_service_monitor_carries_its_release_label_and_selects_the_metrics_services():
    objects = render(value_set("knative-kube-prometheus-stack"))
    monitor = one(objects, "ServiceMonitor", RELEASE)
    assert monitor["metadata"]["labels"]["release"] == "monitoring-stack"
    assert monitor["metadata"]["labels"]["team"] == "sre"
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [s for s in find(objects, "Service", api_version="v1") if selector.items() <= s["metadata"]["labels"].items()]
    assert sorted(s["metadata"]["name"] for s in selected) == sorted(f"{RELEASE}-{r}-metrics" for r in ROLES)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http-metrics" and endpoint["interval"] == "30s"
    # The watcher's own `service` label must survive the target's.
    assert endpoint["honorLabels"] is True
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_prometheus_rule_has_the_seed_alerts_per_role_plus_heartbeat_and_incidents():
    objects = render(value_set("knative-kube-prometheus-stack"))
    rule = one(objects, "PrometheusRule", RELEASE)
    assert rule["metadata"]["labels"]["release"] == "monitoring-stack"
    groups = rule_groups(objects)
    for role in ROLES:
        rules = {r["alert"]: r for r in groups[f"obs-fleet.{role}"]}
        assert sorted(rules) == ["HighErrorRate", "HighLatency", "ServiceDown"]
        job = f'job="{RELEASE}-{role}-metrics",namespace="{NAMESPACE}"'
        assert job in rules["ServiceDown"]["expr"]
        assert "hello_ai_request_duration_seconds_bucket" in rules["HighLatency"]["expr"]
        assert 'code=~"5.."' in rules["HighErrorRate"]["expr"]
        for alert in rules.values():
            assert alert["labels"]["service"] == role and alert["labels"]["team"] == "sre"
    fleet = {r["alert"]: r for r in groups["obs-fleet.fleet"]}
    assert sorted(fleet) == ["CriticalIncidentOpen", "HeartbeatLost", "WatcherCriticalIssuesOpen"]
    assert fleet["HeartbeatLost"]["expr"].startswith("monitoring_service_status{") and fleet["HeartbeatLost"]["expr"].endswith("== 0")
    assert 'curator_incidents_open{job="obs-fleet-curator-metrics",namespace="monitoring",severity="critical"}' in fleet["CriticalIncidentOpen"]["expr"]
    assert "watcher_issues_open" in fleet["WatcherCriticalIssuesOpen"]["expr"]


def test_prometheus_rule_and_bundled_prometheus_load_the_same_rules():
    objects = render({"prometheusRule": {"enabled": True}, "prometheus": {"enabled": True}})
    bundled = yaml.safe_load(rules_file(objects))["groups"]
    assert one(objects, "PrometheusRule", RELEASE)["spec"]["groups"] == bundled


def test_rules_follow_the_metrics_prefix():
    objects = render(value_set("knative-docker-watcher"))
    text = json.dumps(one(objects, "PrometheusRule", "fleet")["spec"])
    assert "obs_http_requests_total" in text and "hello_ai" not in text
    dashboard = one(objects, "ConfigMap", "fleet-dashboard")["data"]["obs-fleet.json"]
    assert "obs_http_request_duration_seconds_bucket" in dashboard and "hello_ai" not in dashboard


def test_bundled_prometheus():
    objects = render(value_set("deployment-bundled-prometheus"))
    name = f"{RELEASE}-prometheus"
    config = yaml.safe_load(prometheus_yml(objects))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert sorted(jobs) == sorted(["prometheus"] + [f"{RELEASE}-{r}-metrics" for r in ROLES])
    for role, (_, metrics_port) in ROLE_PORTS.items():
        (static,) = jobs[f"{RELEASE}-{role}-metrics"]["static_configs"]
        assert static["targets"] == [f"{RELEASE}-{role}-metrics.{NAMESPACE}.svc.cluster.local:{metrics_port}"]
        assert static["labels"] == {"namespace": NAMESPACE}
    assert config["rule_files"] == ["obs-fleet.rules.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager.monitoring.svc:9093"]

    deployment = one(objects, "Deployment", name)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = pod_spec(deployment)["containers"]
    args = container["args"]
    for flag in (
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        "--storage.tsdb.retention.time=30d",
        "--storage.tsdb.retention.size=4GB",
    ):
        assert flag in args
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["config"]["configMap"]["name"] == name
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == name
    claim = one(objects, "PersistentVolumeClaim", name)
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    service = one(objects, "Service", name, "v1")
    assert service["spec"]["ports"][0]["port"] == 9090
    assert service["spec"]["selector"].items() <= pod_labels(deployment).items()

    without_pvc = render(value_set("knative-docker-watcher"))
    assert find(without_pvc, "PersistentVolumeClaim", "fleet-prometheus") == []
    volumes = {v["name"]: v for v in pod_spec(one(without_pvc, "Deployment", "fleet-prometheus"))["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}


def test_grafana_dashboard():
    objects = render(value_set("knative-kube-prometheus-stack"))
    config_map = one(objects, "ConfigMap", f"{RELEASE}-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "obs-fleet"}
    dashboard = json.loads(config_map["data"]["obs-fleet.json"])
    assert dashboard["uid"] == "obs-fleet"
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(expressions) == len(dashboard["panels"]) >= 8
    for metric in ("up", "hello_ai_requests_total", "hello_ai_request_duration_seconds_bucket", "monitoring_service_status"):
        assert any(re.search(rf"\b{metric}\{{", e) for e in expressions), metric
    assert find(render(value_set("deployment-two-roles")), "ConfigMap", f"{RELEASE}-dashboard") == []


def test_chart_app_version_is_the_workspace_version():
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    with helm().Chart.load(str(CHART)) as chart:
        assert chart.metadata["appVersion"] == workspace


# ---- bad values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "lambda"}, r"at '/mode': value must be one of 'knative', 'deployment'"),
        ({"roles": {"curator": {"port": "8002"}}}, r"at '/roles/curator/port': got string, want integer"),
        ({"roles": {"planner": {"metricsPort": 70000}}}, r"at '/roles/planner/metricsPort': maximum"),
        ({"roles": {"watcher": {"autoscaling": {"minScale": 0}}}}, r"/roles/watcher/autoscaling/minScale': minimum: got 0, want 1"),
        ({"roles": {"oracle": {"enabled": True}}}, r"at '/roles': additional properties 'oracle' not allowed"),
        ({"serviceMonitor": {"enabled": True, "interval": "soon"}}, r"at '/serviceMonitor/interval': 'soon' does not match pattern"),
        ({"alerts": {"highErrorRate": {"threshold": 5}}}, r"at '/alerts/highErrorRate/threshold': maximum"),
        ({"config": {"logFormat": "xml"}}, r"at '/config/logFormat': value must be one of 'json', 'text'"),
        ({"prometheus": {"retention": {"size": "4 gigs"}}}, r"at '/prometheus/retention/size'"),
        ({"replicaCount": 3}, r"additional properties 'replicaCount' not allowed"),
        # What may carry a secret never goes through a role's ConfigMap.
        ({"config": {"env": {"DATABASE_URL": "postgres://u:pw@db/x"}}}, r"at '/config/env/DATABASE_URL': false schema"),
        ({"roles": {"archivist": {"env": {"ARCHIVE_URL": "postgres://u:pw@db/x"}}}}, r"at '/roles/archivist/env/ARCHIVE_URL': false schema"),
        ({"roles": {"synthesizer": {"env": {"NOTIFY_WEBHOOKS": "https://chat.example/hook"}}}}, r"at '/roles/synthesizer/env/NOTIFY_WEBHOOKS': false schema"),
        ({"roles": {"curator": {"env": {"API_TOKEN": "t"}}}}, r"at '/roles/curator/env/API_TOKEN': false schema"),
        ({"database": {"url": "mysql://db/x"}}, r"at '/database/url': 'mysql://db/x' does not match pattern"),
        ({"roles": {"synthesizer": {"notify": {"webhooks": ["ftp://x"]}}}}, r"at '/roles/synthesizer/notify/webhooks/0'"),
        ({"roles": {"synthesizer": {"notify": {"minSeverity": "loud"}}}}, r"at '/roles/synthesizer/notify/minSeverity'"),
        # The watcher's Kubernetes access and the planner's remediation have one way in each.
        ({"roles": {"watcher": {"kubernetes": {"watch": "maybe"}}}}, r"at '/roles/watcher/kubernetes/watch': value must be one of 'auto', 'on', 'off', true, false"),
        ({"roles": {"watcher": {"kubernetes": {"namespaces": ["Payments"]}}}}, r"at '/roles/watcher/kubernetes/namespaces/0'"),
        ({"roles": {"watcher": {"kubernetes": {"namespaces": "payments"}}}}, r"at '/roles/watcher/kubernetes/namespaces': got string, want array"),
        ({"roles": {"watcher": {"env": {"KUBERNETES_WATCH": "on"}}}}, r"at '/roles/watcher/env/KUBERNETES_WATCH': false schema"),
        ({"roles": {"planner": {"env": {"AUTO_REMEDIATE": "1"}}}}, r"at '/roles/planner/env/AUTO_REMEDIATE': false schema"),
        ({"roles": {"planner": {"autoRemediate": "yes"}}}, r"at '/roles/planner/autoRemediate': got string, want boolean"),
        ({"statusPage": {"ingress": {"host": "https://status.example.com"}}}, r"at '/statusPage/ingress/host'"),
        ({"statusPage": {"httpRoute": {"parentRefs": [{"namespace": "x"}]}}}, r"at '/statusPage/httpRoute/parentRefs/0': missing property 'name'"),
        ({"podDisruptionBudget": {"maxUnavailable": 0}}, r"at '/podDisruptionBudget/maxUnavailable'"),
        ({"tests": {"image": "oracle"}}, r"at '/tests/image'"),
    ],
)
def test_bad_values_are_rejected_by_the_schema(values, message):
    with pytest.raises(helm().HelmValuesError, match=message):
        render(values)
    with helm().Chart.load(str(CHART)) as chart:
        with pytest.raises(helm().HelmValuesError):
            chart.validate_schema(chart.merge_values(values))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"roles": {"watcher": {"docker": {"enabled": True}}}}, r"set roles.watcher.mode=deployment"),
        ({"roles": {"curator": {"metricsPort": 8002}}}, r"roles.curator: port and metricsPort must differ"),
        (
            {"database": {"url": PG_URL}, "roles": {"curator": {"autoscaling": {"minScale": 5, "maxScale": 3}, "persistence": {"enabled": False}}}},
            r"minScale \(5\) is above maxScale \(3\)",
        ),
        ({"roles": {r: {"enabled": False} for r in ROLES}}, r"enable at least one role"),
        ({"apiToken": {"value": "a", "existingSecret": "b"}}, r"value or existingSecret, not both"),
        # A ReadWriteOnce volume is one pod's, database or not.
        (
            {"mode": "deployment", "database": {"url": PG_URL}, "roles": {"curator": {"replicas": 2}}},
            r"roles.curator: persistence \(a ReadWriteOnce volume\) needs replicas: 1; with a database set roles.curator.persistence.enabled=false",
        ),
        (
            {"database": {"existingSecret": "db"}, "roles": {"planner": {"autoscaling": {"maxScale": 3}}}},
            r"roles.planner: persistence \(a ReadWriteOnce volume\) needs a single instance",
        ),
        ({"database": {"url": PG_URL, "existingSecret": "db"}}, r"database: set url or existingSecret, not both"),
        ({"database": {"caSecret": "ca"}}, r"database.caSecret is the CA of a PostgreSQL server"),
        ({"database": {"url": PG_URL, "caSecret": "ca"}}, r"add sslrootcert=/etc/obs-fleet/postgres-ca/ca.crt"),
        (
            {"roles": {"synthesizer": {"notify": {"webhooks": ["https://chat.example/hook"], "existingSecret": "hooks"}}}},
            r"roles.synthesizer.notify: set webhooks or existingSecret, not both",
        ),
    ],
)
def test_values_that_cannot_work_together_fail_with_a_clear_message(values, message):
    with pytest.raises(helm().HelmRenderError, match=message):
        render(values)


# ---- promtool -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in VALUE_SETS if n != "knative-defaults"])
def test_rendered_rules_pass_promtool_check_rules(name, tmp_path):
    objects = render(value_set(name))
    files = []
    for rule in find(objects, "PrometheusRule"):
        path = tmp_path / "prometheusrule.yml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        files.append(path)
    for config_map in find(objects, "ConfigMap"):
        if "obs-fleet.rules.yml" in config_map.get("data", {}):
            path = tmp_path / "bundled.rules.yml"
            path.write_text(config_map["data"]["obs-fleet.rules.yml"])
            files.append(path)
    assert files, f"{name} renders no rules"
    result = run([tool("promtool"), "check", "rules", *map(str, files)])
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("name", [n for n in VALUE_SETS if value_set(n).get("prometheus", {}).get("enabled")])
def test_rendered_prometheus_config_passes_promtool_check_config(name, tmp_path):
    objects = render(value_set(name))
    config_map = next(c for c in find(objects, "ConfigMap") if "prometheus.yml" in c.get("data", {}))
    for key, text in config_map["data"].items():
        (tmp_path / key).write_text(text)
    result = run([tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")])
    assert "SUCCESS" in result.stdout and "rule files found" in result.stdout


# ---- the watcher's Kubernetes access ----------------------------------------------------------

READ = {"get", "list", "watch"}


def rbac(objects: list[dict]) -> dict[str, list[dict]]:
    kinds = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    return {kind: find(objects, kind) for kind in kinds}


def granted(rules: list[dict]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, over every rule."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                verbs.setdefault((group, resource), set()).update(rule["verbs"])
    return verbs


def assert_valid(objects: list[dict]) -> None:
    problems = {f"{o['kind']}/{o['metadata']['name']}": e for o in objects if (e := validation_errors(o))}
    assert problems == {}


@pytest.mark.parametrize("mode", ["knative", "deployment"])
def test_by_default_the_watcher_reads_pods_logs_and_events_in_every_namespace(mode):
    """watch: auto, no namespaces: a ClusterRole that can only read, bound to the watcher's
    own ServiceAccount, whose token only the watcher's pod mounts."""
    objects = render({"mode": mode})
    found = rbac(objects)
    assert found["Role"] == found["RoleBinding"] == []
    (account,) = found["ServiceAccount"]
    (cluster_role,) = found["ClusterRole"]
    (binding,) = found["ClusterRoleBinding"]
    assert_valid([account, cluster_role, binding])
    assert account["metadata"]["name"] == f"{RELEASE}-watcher"
    assert account["automountServiceAccountToken"] is False
    assert cluster_role["metadata"]["name"] == f"{NAMESPACE}-{RELEASE}-watcher"
    assert granted(cluster_role["rules"]) == {
        ("", "pods"): READ,
        ("", "pods/log"): READ,
        ("", "events"): READ,
        ("events.k8s.io", "events"): READ,
    }
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{RELEASE}-watcher", "namespace": NAMESPACE}]
    for role in ROLES:
        spec = pod_spec(role_workload(objects, role))
        if role == "watcher":
            assert spec["serviceAccountName"] == f"{RELEASE}-watcher"
            assert spec["automountServiceAccountToken"] is True
        else:
            assert "serviceAccountName" not in spec and spec["automountServiceAccountToken"] is False, role
    env = one(objects, "ConfigMap", f"{RELEASE}-watcher")["data"]
    assert (env["KUBERNETES_WATCH"], env["KUBERNETES_NAMESPACES"], env["KUBERNETES_LABEL_SELECTOR"]) == ("auto", "", "")
    assert one(objects, "ConfigMap", f"{RELEASE}-planner")["data"]["AUTO_REMEDIATE"] == "0"


def test_listed_namespaces_get_a_role_each_and_remediation_may_delete_pods_and_restart_owners():
    objects = render(value_set("deployment-status-page-exposed"))
    found = rbac(objects)
    assert found["ClusterRole"] == found["ClusterRoleBinding"] == []
    assert sorted(r["metadata"]["namespace"] for r in found["Role"]) == ["monitoring", "payments"]
    assert sorted(b["metadata"]["namespace"] for b in found["RoleBinding"]) == ["monitoring", "payments"]
    assert_valid([o for kind in found.values() for o in kind])
    for role in found["Role"]:
        assert granted(role["rules"]) == {
            ("", "pods"): READ | {"delete"},
            ("", "pods/log"): READ,
            ("", "events"): READ,
            ("events.k8s.io", "events"): READ,
            ("apps", "deployments"): {"get", "patch"},
            ("apps", "statefulsets"): {"get", "patch"},
            ("apps", "daemonsets"): {"get", "patch"},
        }
    for binding in found["RoleBinding"]:
        assert binding["roleRef"]["kind"] == "Role" and binding["roleRef"]["name"] == f"{RELEASE}-watcher"
        # The account lives in the release's namespace, wherever the binding is.
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{RELEASE}-watcher", "namespace": NAMESPACE}]
    env = one(objects, "ConfigMap", f"{RELEASE}-watcher")["data"]
    assert env["KUBERNETES_WATCH"] == "on"
    assert env["KUBERNETES_NAMESPACES"] == "payments,monitoring"
    assert env["KUBERNETES_LABEL_SELECTOR"] == "team=payments,tier!=batch"
    assert one(objects, "ConfigMap", f"{RELEASE}-planner")["data"]["AUTO_REMEDIATE"] == "1"


def test_remediation_across_every_namespace_widens_the_cluster_role():
    objects = render({"roles": {"planner": {"autoRemediate": True}}})
    (cluster_role,) = find(objects, "ClusterRole")
    verbs = granted(cluster_role["rules"])
    assert verbs[("", "pods")] == READ | {"delete"}
    assert verbs[("apps", "deployments")] == {"get", "patch"}
    assert_valid([cluster_role])
    # Without remediation nothing can be changed, wherever the watcher looks.
    for values in ({}, {"roles": {"watcher": {"kubernetes": {"namespaces": ["a"]}}}}):
        for role in find(render(values), "ClusterRole") + find(render(values), "Role"):
            assert set().union(*granted(role["rules"]).values()) == READ, values


def test_a_bare_yaml_on_or_off_for_kubernetes_watch_means_on_or_off():
    """`watch: on` in a values file is YAML 1.1's true: taken as on, not refused."""
    values = yaml.safe_load("roles:\n  watcher:\n    kubernetes:\n      watch: on\n")
    assert values["roles"]["watcher"]["kubernetes"]["watch"] is True
    objects = render(values)
    assert one(objects, "ConfigMap", f"{RELEASE}-watcher")["data"]["KUBERNETES_WATCH"] == "on"
    assert find(objects, "ClusterRole")
    objects = render(yaml.safe_load("roles:\n  watcher:\n    kubernetes:\n      watch: off\n"))
    assert one(objects, "ConfigMap", f"{RELEASE}-watcher")["data"]["KUBERNETES_WATCH"] == "off"
    assert find(objects, "ServiceAccount") == []


@pytest.mark.parametrize("values", [{"roles": {"watcher": {"kubernetes": {"watch": "off"}}}}, {"roles": {"watcher": {"enabled": False}}}])
def test_a_watcher_not_following_kubernetes_gets_no_account_and_no_token(values):
    objects = render(values)
    assert all(kind == [] for kind in rbac(objects).values())
    for workload in workloads(objects):
        spec = pod_spec(workload)
        assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    if values["roles"]["watcher"].get("enabled", True):
        assert one(objects, "ConfigMap", f"{RELEASE}-watcher")["data"]["KUBERNETES_WATCH"] == "off"


# ---- the status page from outside, disruption budgets, helm test ----------------------------


def test_the_status_page_is_not_published_by_default():
    for name in VALUE_SETS:
        if name == "deployment-status-page-exposed":
            continue
        objects = render(value_set(name))
        assert find(objects, "Ingress") == find(objects, "HTTPRoute") == [], name


def test_ingress_and_http_route_route_only_the_status_page_to_the_synthesizers_main_port():
    objects = render(value_set("deployment-status-page-exposed"))
    name = f"{RELEASE}-synthesizer"
    service = one(objects, "Service", name, "v1")
    (service_port,) = service["spec"]["ports"]
    (container,) = pod_spec(one(objects, "Deployment", name))["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = one(objects, "ConfigMap", name)["data"]
    # The Service's port reaches PORT (the status page), not METRICS_PORT.
    assert ports[service_port["targetPort"]] == int(env["PORT"]) == 8004 != int(env["METRICS_PORT"])

    ingress = one(objects, "Ingress", name)
    assert_valid([ingress])
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "status-tls", "hosts": ["status.example.com"]}]
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "status.example.com"
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Exact")
    assert path["backend"]["service"] == {"name": name, "port": {"name": service_port["name"]}}

    route = one(objects, "HTTPRoute", name)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert_valid([route])
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateway-system", "sectionName": "https"}]
    assert route["spec"]["hostnames"] == ["status.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "Exact", "value": "/"}, "method": "GET"}]
    assert rule["backendRefs"] == [{"name": name, "port": service_port["port"]}]


def test_the_vendored_http_route_schema_catches_a_broken_route():
    """The HTTPRoute is checked against tests/chart/schemas, not waved through."""
    route = one(render(value_set("deployment-status-page-exposed")), "HTTPRoute", f"{RELEASE}-synthesizer")
    broken = json.loads(json.dumps(route))
    broken["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Glob"
    assert any("Glob" in error for error in validation_errors(broken))
    broken = json.loads(json.dumps(route))
    broken["spec"]["rules"][0]["backendRefs"][0]["port"] = "http"
    assert validation_errors(broken)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"statusPage": {"ingress": {"enabled": True, "host": "status.example.com"}}}, r"statusPage.ingress needs roles.synthesizer.mode=deployment"),
        ({"statusPage": {"httpRoute": {"enabled": True, "parentRefs": [{"name": "gw"}]}}}, r"statusPage.httpRoute needs roles.synthesizer.mode=deployment"),
        ({"mode": "deployment", "statusPage": {"httpRoute": {"enabled": True}}}, r"statusPage.httpRoute.parentRefs: name the Gateway"),
        ({"mode": "deployment", "statusPage": {"ingress": {"enabled": True, "host": ""}}}, r"statusPage.ingress.host: name the host"),
        ({"mode": "deployment", "roles": {"synthesizer": {"enabled": False}}, "statusPage": {"ingress": {"enabled": True, "host": "s.example.com"}}}, r"enable roles.synthesizer"),
    ],
)
def test_a_status_page_route_that_cannot_work_fails_with_a_clear_message(values, message):
    with pytest.raises(helm().HelmRenderError, match=message):
        render(values)


def test_every_role_running_more_than_one_instance_gets_a_disruption_budget():
    objects = render(value_set("deployment-status-page-exposed"))
    budgets = {b["metadata"]["name"]: b for b in find(objects, "PodDisruptionBudget")}
    assert sorted(budgets) == sorted(f"{RELEASE}-{role}" for role in ROLES)
    assert_valid(list(budgets.values()))
    for role in ROLES:
        budget = budgets[f"{RELEASE}-{role}"]
        assert budget["spec"]["maxUnavailable"] == 1
        selector = budget["spec"]["selector"]["matchLabels"]
        deployment = role_workload(objects, role)
        assert selector.items() <= pod_labels(deployment).items()
        # It selects this role's pods only.
        others = [w for w in workloads(objects) if w is not deployment]
        assert not any(selector.items() <= pod_labels(w).items() for w in others), role
    # Single instances (the default) get none: a budget could only block a drain.
    assert find(render(), "PodDisruptionBudget") == []
    assert find(render({"mode": "deployment"}), "PodDisruptionBudget") == []
    # Knative: the floor of the autoscaler is what a drain must respect.
    knative = render(value_set("knative-postgres"))
    assert [b["metadata"]["name"] for b in find(knative, "PodDisruptionBudget")] == [f"{RELEASE}-curator"]
    assert_valid(find(knative, "PodDisruptionBudget"))
    assert find(render({**value_set("deployment-status-page-exposed"), "podDisruptionBudget": {"enabled": False}}), "PodDisruptionBudget") == []
    # A percentage stays a string (an int-or-string field).
    halves = find(render({**value_set("deployment-status-page-exposed"), "podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"}}), "PodDisruptionBudget")
    assert {b["spec"]["maxUnavailable"] for b in halves} == {"50%"}
    assert_valid(halves)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_test_runs_the_role_healthcheck_against_every_enabled_roles_url(name):
    values = value_set(name)
    objects = render(values)
    prefix = values.get("fullnameOverride", RELEASE)
    (pod,) = find(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert_valid([pod])
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    repository = values.get("image", {}).get("repository", "ghcr.io/obs-fleet/obs-fleet")
    assert container["image"].startswith(f"{repository}/watcher:")
    assert container["args"][0] == "healthcheck"
    # The URLs the roles reach each other by (<ROLE>_URL in every ConfigMap), each /healthz.
    enabled = [r for r in ROLES if values.get("roles", {}).get(r, {}).get("enabled", True)]
    some_env = one(objects, "ConfigMap", f"{prefix}-{enabled[0]}")["data"]
    assert sorted(container["args"][1:]) == sorted(f"{some_env[role.upper() + '_URL']}/healthz" for role in enabled)
    assert find(render({**values, "tests": {"enabled": False, "image": "watcher"}}), "Pod") == []


@pytest.mark.parametrize("mode", ["knative", "deployment"])
def test_notes_point_at_the_status_page_on_the_synthesizers_main_port(mode):
    objects = render({"mode": mode})
    notes = render_files({"mode": mode})[f"{CHART.name}/templates/NOTES.txt"]
    env = one(objects, "ConfigMap", f"{RELEASE}-synthesizer")["data"]
    (forward,) = [line for line in notes.splitlines() if "port-forward" in line and "synthesizer" in line]
    local, _, remote = forward.split()[-1].partition(":")
    if mode == "knative":
        # Straight to the pod's PORT (a cluster-local Knative Service cannot be forwarded).
        assert "serving.knative.dev/service=obs-fleet-synthesizer" in forward
        assert remote == env["PORT"]
    else:
        service = one(objects, "Service", f"{RELEASE}-synthesizer", "v1")
        (port,) = service["spec"]["ports"]
        (container,) = pod_spec(one(objects, "Deployment", f"{RELEASE}-synthesizer"))["containers"]
        target = {p["name"]: p["containerPort"] for p in container["ports"]}[port["targetPort"]]
        assert f"svc/{RELEASE}-synthesizer " in forward and int(remote) == port["port"]
        assert target == int(env["PORT"])
    assert remote != env["METRICS_PORT"] and f"http://127.0.0.1:{local}/" in notes
    assert "metrics" not in forward
    assert f"helm test {RELEASE} -n {NAMESPACE}" in notes
    exposed = render_files(value_set("deployment-status-page-exposed"))[f"{CHART.name}/templates/NOTES.txt"]
    assert "https://status.example.com/" in exposed and "Gateway gateway-system/public" in exposed


# ---- secrets never in ConfigMaps ------------------------------------------------------------

SECRET_VARIABLES = {"API_TOKEN", "DATABASE_URL", "ARCHIVE_URL", "NOTIFY_WEBHOOKS"}
# A URL with a password in it, or a query parameter that names a secret.
SECRET_LOOKING = [
    re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@:]+:[^/\s@]+@", re.IGNORECASE),
    re.compile(r"[?&](token|key|apikey|api_key|password|secret|sig|signature)=[^&\s\"]+", re.IGNORECASE),
    re.compile(r"hooks\.slack\.com/services/", re.IGNORECASE),
]
INLINE_SECRETS = {
    "apiToken": {"value": "inline-api-token-4711"},
    "database": {"url": "postgres://obs:inline-db-password@db.example:5432/obs?sslmode=require"},
    "roles": {"synthesizer": {"notify": {"webhooks": ["https://hooks.slack.com/services/T1/B1/inline-hook-token", "generic:https://ops.example/obs?token=inline-query-token"]}}},
}


def config_map_leaks(config_map: dict, known: list[str]) -> list[str]:
    """What in a ConfigMap looks like, or is, a secret: a secret variable's name as a key,
    a known secret value, a URL with credentials or a secret query parameter."""
    leaks = []
    for key, value in (config_map.get("data") or {}).items():
        if key in SECRET_VARIABLES:
            leaks.append(f"key {key}")
        for needle in known:
            if needle in value:
                leaks.append(f"{key} holds {needle!r}")
        for pattern in SECRET_LOOKING:
            if match := pattern.search(value):
                leaks.append(f"{key} holds {match.group(0)!r}")
    return leaks


@pytest.mark.parametrize("name", VALUE_SETS + ["inline-secrets"])
def test_no_rendered_config_map_holds_a_secret(name):
    """The API token, the database URL and webhook URLs (which carry tokens) reach the roles
    from Secrets only: no ConfigMap of any value set holds one, by name, by value or by the
    look of it (credentials in a URL, a token in a query)."""
    values = INLINE_SECRETS if name == "inline-secrets" else value_set(name)
    objects = render(values)
    known = ["inline-api-token-4711", "inline-db-password", "inline-hook-token", "inline-query-token", "not-a-real-password", "not-a-real-token"]
    config_maps = find(objects, "ConfigMap")
    assert config_maps
    leaks = {c["metadata"]["name"]: found for c in config_maps if (found := config_map_leaks(c, known))}
    assert leaks == {}
    if name == "inline-secrets":
        secrets = {s["metadata"]["name"] for s in find(objects, "Secret")}
        assert {f"{RELEASE}-api-token", f"{RELEASE}-database", f"{RELEASE}-synthesizer-notify"} <= secrets
        assert_secrets_stay_in_secrets(objects, known)


def test_the_config_map_check_sees_a_leak():
    """The check above is not a rubber stamp: each kind of leak is reported."""
    assert config_map_leaks({"data": {"DATABASE_URL": "x"}}, []) == ["key DATABASE_URL"]
    assert config_map_leaks({"data": {"X": "the secret-value"}}, ["secret-value"])
    assert config_map_leaks({"data": {"PROBE_TARGETS": "db=http://admin:pw@db/health"}}, [])
    assert config_map_leaks({"data": {"HOOK": "https://ops.example/obs?apikey=abc"}}, [])
    assert config_map_leaks({"data": {"HOOK": "https://hooks.slack.com/services/T/B/x"}}, [])
    assert config_map_leaks({"data": {"PROBE_TARGETS": "a=http://a.svc/healthz?verbose=1"}}, []) == []
