//! AUTO_REMEDIATE for Kubernetes pods, end to end with real parts: the real watcher, watching
//! the watcher's own test API server (`KubeApi`, from the watcher's test suite, compiled in
//! here as it is there) with the real kube-rs client, raises `unhealthy` issues about pods
//! that are not ready; the planner gets them as incidents with the watcher's facts verbatim
//! and restarts the pods through the watcher's `POST /pods/{ns}/{pod}/restart` — a rollout
//! restart of a Deployment (the API server receives kubectl's restartedAt patch), a delete
//! of a StatefulSet's pod (the pod is gone) — under the same cooldown and the same token as
//! container restarts.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use obs_core::config::Peers;
use obs_core::Service;
use obs_testkit::{eventually, test_config, TestApp};
use planner::config::RemediationSettings;
use planner::PlannerConfig;
use serde_json::{json, Value};
use watcher::config::{KubernetesMode, KubernetesSettings};
use watcher::{Watcher, WatcherConfig};

use crate::helpers::*;
use crate::kube_api::KubeApi;

const TOKEN: &str = "fleet-secret";

/// A running pod whose container `app` is not ready (its readiness probe fails), owned by
/// `owner` (`ReplicaSet`/`StatefulSet`, name) with the labels a ReplicaSet's pods carry.
fn unready_pod(namespace: &str, name: &str, owner: (&str, &str), labels: Value) -> Pod {
    let long_ago = (chrono::Utc::now() - chrono::Duration::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": namespace, "uid": format!("uid-{name}"),
            "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner.0, "name": owner.1,
                "uid": format!("uid-{}", owner.1), "controller": true}]
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "app",
            "image": "registry.example/app:1.2",
            "resources": {"limits": {"memory": "256Mi"}}}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": long_ago}],
            "containerStatuses": [{"name": "app", "image": "registry.example/app:1.2",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": {"running": {"startedAt": long_ago}}}]
        }
    }))
    .expect("a pod")
}

async fn watcher(api: &KubeApi) -> (TestApp, tempfile::TempDir) {
    let (mut config, state) = test_config("watcher");
    config.api_token = Some(TOKEN.into());
    let mut settings = WatcherConfig::for_tests();
    settings.kubernetes = KubernetesSettings {
        mode: KubernetesMode::Required,
        kubeconfig: Some(api.kubeconfig.clone()),
        not_ready_after: Duration::from_millis(200),
        ..KubernetesSettings::off()
    };
    let app = TestApp::spawn(config, async move |service: &Service| {
        Watcher::with_config(service, settings).await
    })
    .await
    .expect("the watcher starts");
    (app, state)
}

/// The watcher's open `unhealthy` issue about `service`, as the curator would pass it on: an
/// incident with the issue's facts.
async fn unhealthy_incident(watcher: &TestApp, service: &str) -> Value {
    let issue = eventually(
        &format!("the watcher's unhealthy issue about {service}"),
        Duration::from_secs(20),
        || async {
            let response = watcher
                .client
                .get(watcher.url("/issues?state=open"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .ok()?;
            let body: Value = response.json().await.ok()?;
            body["issues"]
                .as_array()?
                .iter()
                .find(|issue| issue["kind"] == "unhealthy" && issue["service"] == service)
                .cloned()
        },
    )
    .await;
    let subject = issue["subject"].as_str().expect("a subject");
    assert_eq!(issue["facts"]["platform"], "kubernetes", "{issue}");
    incident("unhealthy", service, subject, issue["facts"].clone())
}

async fn post_with_token(app: &TestApp, incidents: &[Value]) {
    let response = app
        .client
        .post(app.url("/v1/incidents"))
        .bearer_auth(TOKEN)
        .json(&json!(incidents))
        .send()
        .await
        .expect("an answer");
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
}

/// The plan's pod restart step, once it has an outcome.
async fn pod_restart(app: &TestApp, incident: &Value) -> (Value, Value) {
    eventually(
        "the pod restart step's outcome",
        Duration::from_secs(30),
        || async {
            let plan = plan_of(app, incident).await;
            let step = plan["steps"]
                .as_array()?
                .iter()
                .find(|step| step["action"] == "restart_pod")?
                .clone();
            step.get("outcome").cloned().map(|outcome| (step, outcome))
        },
    )
    .await
}

#[actix_web::test]
async fn unready_pods_are_restarted_through_the_watcher_as_their_owner_recreates_them() {
    let api = KubeApi::start().await;
    let deployment_pod = |name: &str| {
        unready_pod(
            "prod",
            name,
            ("ReplicaSet", "api-7d9f"),
            json!({"pod-template-hash": "7d9f"}),
        )
    };
    api.apply(deployment_pod("api-7d9f-aaaaa"));
    api.apply(deployment_pod("api-7d9f-bbbbb"));
    api.apply(unready_pod(
        "prod",
        "db-0",
        ("StatefulSet", "db"),
        json!({}),
    ));
    let (watcher, _watcher_state) = watcher(&api).await;
    let peers = Peers {
        watcher: Some(watcher.address.clone()),
        ..Peers::default()
    };
    let (mut config, _state) = test_config("planner");
    config.peers = peers;
    config.api_token = Some(TOKEN.into());
    let settings = PlannerConfig {
        remediation: RemediationSettings {
            enabled: true,
            cooldown: Duration::from_secs(300),
            max_attempts: 3,
        },
        ..PlannerConfig::for_tests()
    };
    let app = spawn_with(config, settings).await;

    // A Deployment's pod: a rollout restart, so the Deployment surges a new pod first.
    let sick = unhealthy_incident(&watcher, "api").await;
    post_with_token(&app, std::slice::from_ref(&sick)).await;
    let (step, outcome) = pod_restart(&app, &sick).await;
    assert_eq!(outcome["status"], "succeeded", "{step:#}");
    let pod = sick["facts"]["pod"].as_str().unwrap();
    assert_eq!(step["target"], format!("prod/{pod}"));
    assert!(
        step["title"]
            .as_str()
            .unwrap()
            .contains("kubectl -n prod rollout restart deployment/api"),
        "{step}"
    );
    assert_eq!(
        outcome["detail"], "the watcher: Deployment prod/api restarted",
        "{outcome}"
    );
    let patches = api.patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(
        patches[0].0,
        "/apis/apps/v1/namespaces/prod/deployments/api"
    );
    assert!(
        patches[0].2["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{patches:?}"
    );

    // The Deployment's other pod, within the cooldown: the Deployment was just rolled out, so
    // it is not rolled again — the cooldown is the Deployment's, not the pod's.
    let other = {
        let mut other = sick.clone();
        let name = if pod == "api-7d9f-aaaaa" {
            "api-7d9f-bbbbb"
        } else {
            "api-7d9f-aaaaa"
        };
        other["id"] = json!(ulid::Ulid::new().to_string());
        other["fingerprint"] = json!(format!("api/unhealthy/prod/{name}/app"));
        other["subject"] = json!(format!("prod/{name}/app"));
        other["facts"]["pod"] = json!(name);
        other
    };
    post_with_token(&app, std::slice::from_ref(&other)).await;
    let (_, outcome) = pod_restart(&app, &other).await;
    assert_eq!(outcome["status"], "skipped", "{outcome}");
    let detail = outcome["detail"].as_str().unwrap();
    assert!(
        detail.contains("deployment/api in prod") && detail.contains("cooldown"),
        "{detail}"
    );
    assert_eq!(api.patches().len(), 1, "not rolled out twice");

    // A StatefulSet's pod: deleted; the StatefulSet makes it again.
    let db = unhealthy_incident(&watcher, "db").await;
    post_with_token(&app, std::slice::from_ref(&db)).await;
    let (step, outcome) = pod_restart(&app, &db).await;
    assert_eq!(outcome["status"], "succeeded", "{step:#}");
    assert_eq!(outcome["detail"], "the watcher: pod prod/db-0 deleted");
    assert!(!api.has_pod("prod", "db-0"));

    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "planner_remediations_total{outcome=\"succeeded\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "planner_remediations_total{outcome=\"skipped\"}"),
        Some(1.0)
    );
    api.stop().await;
}

#[actix_web::test]
async fn a_bare_pod_is_never_restarted_by_itself() {
    // Deleting a pod nothing owns would remove it for good: the plan has no restart step.
    let rules = planner::rules::Rules::builtin().expect("the built-in rules");
    let facts = json!({"platform": "kubernetes", "namespace": "prod", "pod": "debug",
        "container": "app", "not_ready_seconds": 30});
    let sick: obs_model::Incident =
        serde_json::from_value(incident("unhealthy", "debug", "prod/debug/app", facts))
            .expect("an incident");
    let rendered = rules.render(&sick, chrono::Utc::now());
    assert_eq!(rendered.rule, "unhealthy_kubernetes");
    assert!(
        rendered.steps.iter().all(|step| !step.safe),
        "{:?}",
        rendered.steps
    );
}
