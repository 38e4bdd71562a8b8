//! Kubernetes: the real watcher, with the real kube-rs client, against [`KubeApi`] — a
//! loopback server speaking the list/watch protocol (no API server can be installed here).
//! Each test builds pods from k8s-openapi's types, lets the server list, stream, bookmark,
//! expire, cut or refuse them, and reads the outcome from the watcher's own /issues and
//! /metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus,
    ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use obs_testkit::{eventually, TestApp};
use serde_json::Value;
use watcher::config::{KubernetesMode, KubernetesSettings};
use watcher::{Watcher, WatcherConfig};

use crate::helpers::{events_of, get, metrics, post, sample, spawn, spawn_in, wait_for_issue};
use crate::kube_api::{KubeApi, TOKEN};

// --- pods, as the kubelet reports them ------------------------------------------------------

fn ago(seconds: i64) -> Time {
    let now = Utc::now() - chrono::Duration::seconds(seconds);
    Time(k8s_openapi::jiff::Timestamp::from_second(now.timestamp()).expect("a timestamp in range"))
}

/// A pod with one container `app` (memory limit 256Mi, cpu 500m) on node-1, running and ready.
fn pod(namespace: &str, name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-1".into()),
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.example/app:1.2".into()),
                resources: Some(ResourceRequirements {
                    limits: Some(BTreeMap::from([
                        ("memory".to_string(), Quantity("256Mi".into())),
                        ("cpu".to_string(), Quantity("500m".into())),
                    ])),
                    ..ResourceRequirements::default()
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![condition("PodScheduled", "True", None, 600)]),
            container_statuses: Some(vec![ContainerStatus {
                name: "app".into(),
                image: "registry.example/app:1.2".into(),
                image_id: String::new(),
                ready: true,
                restart_count: 0,
                state: Some(running(600)),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        }),
    }
}

fn condition(kind: &str, status: &str, reason: Option<&str>, since: i64) -> PodCondition {
    PodCondition {
        type_: kind.into(),
        status: status.into(),
        reason: reason.map(Into::into),
        last_transition_time: Some(ago(since)),
        ..PodCondition::default()
    }
}

fn running(since: i64) -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(ago(since)),
        }),
        ..ContainerState::default()
    }
}

fn waiting(reason: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: Some(format!("{reason}: back-off")),
        }),
        ..ContainerState::default()
    }
}

fn terminated(exit_code: i32, reason: &str, finished: i64) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code,
            reason: Some(reason.into()),
            finished_at: Some(ago(finished)),
            started_at: Some(ago(finished + 5)),
            container_id: Some(format!("containerd://{exit_code}-{finished}")),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

fn owned(mut pod: Pod, kind: &str, name: &str) -> Pod {
    pod.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        controller: Some(true),
        ..OwnerReference::default()
    }]);
    pod
}

fn label(mut pod: Pod, key: &str, value: &str) -> Pod {
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
    pod
}

fn container(pod: &mut Pod) -> &mut ContainerStatus {
    &mut pod
        .status
        .as_mut()
        .and_then(|s| s.container_statuses.as_mut())
        .expect("container statuses")[0]
}

/// A Deployment's pod (through its ReplicaSet), OOM-killed 5 s ago and running again.
fn oom_killed_pod(namespace: &str, name: &str) -> Pod {
    let mut pod = label(
        owned(pod(namespace, name), "ReplicaSet", "api-7d9f"),
        "pod-template-hash",
        "7d9f",
    );
    let status = container(&mut pod);
    status.restart_count = 1;
    status.state = Some(running(2));
    status.last_state = Some(terminated(137, "OOMKilled", 5));
    pod
}

fn image_pull_pod(namespace: &str, name: &str) -> Pod {
    let mut pod = owned(pod(namespace, name), "Job", "batch");
    let status = container(&mut pod);
    status.ready = false;
    status.state = Some(waiting("ImagePullBackOff"));
    pod
}

// --- the watcher ------------------------------------------------------------------------------

fn settings(api: &KubeApi) -> WatcherConfig {
    let mut config = WatcherConfig::for_tests();
    config.kubernetes = KubernetesSettings {
        mode: KubernetesMode::Required,
        kubeconfig: Some(api.kubeconfig.clone()),
        not_ready_after: Duration::from_millis(200),
        unschedulable_after: Duration::from_millis(200),
        ..KubernetesSettings::off()
    };
    config.docker.restart_loop_window = Duration::from_secs(30);
    config
}

/// Open issues by (kind, subject) → (id, count): what must not change across a relist.
async fn open_issues(app: &TestApp) -> BTreeMap<(String, String), (String, u64)> {
    let (status, body) = get(app, "/issues?state=open&limit=1000").await;
    assert_eq!(status, 200, "{body}");
    let mut open = BTreeMap::new();
    for issue in body["issues"].as_array().expect("issues") {
        let key = (
            issue["kind"].as_str().unwrap_or_default().to_string(),
            issue["subject"].as_str().unwrap_or_default().to_string(),
        );
        let value = (
            issue["id"].as_str().unwrap_or_default().to_string(),
            issue["count"].as_u64().unwrap_or_default(),
        );
        assert!(
            open.insert(key.clone(), value).is_none(),
            "{key:?} is open twice: {body}"
        );
    }
    open
}

async fn metric(app: &TestApp, series: &str) -> f64 {
    sample(&metrics(app).await, series).unwrap_or(f64::NAN)
}

async fn wait_connected(app: &TestApp, want: f64) {
    eventually(
        &format!("watcher_kubernetes_connected to be {want}"),
        Duration::from_secs(20),
        || async { (metric(app, "watcher_kubernetes_connected").await == want).then_some(()) },
    )
    .await;
}

fn issue_of<'a>(issues: &'a [Value], kind: &str, subject: &str) -> Option<&'a Value> {
    issues
        .iter()
        .find(|issue| issue["kind"] == kind && issue["subject"] == subject)
}

// --- the tests --------------------------------------------------------------------------------

#[actix_web::test]
async fn pods_in_trouble_become_issues_with_their_kubernetes_facts() {
    let api = KubeApi::start().await;
    // Already in trouble when the watcher starts: found by the list.
    api.apply(oom_killed_pod("prod", "api-7d9f-abcde"));
    let mut web = label(
        owned(
            pod("prod", "web-00001-deployment-5c-xyz"),
            "ReplicaSet",
            "web-00001-deployment-5c",
        ),
        "serving.knative.dev/service",
        "web",
    );
    let status = container(&mut web);
    status.ready = false;
    status.restart_count = 4;
    status.state = Some(waiting("CrashLoopBackOff"));
    status.last_state = Some(terminated(1, "Error", 3));
    api.apply(web);
    api.apply(image_pull_pod("prod", "batch-x1"));
    let mut big = owned(pod("prod", "big-0"), "StatefulSet", "big");
    big.spec.as_mut().unwrap().node_name = None;
    let status = big.status.as_mut().unwrap();
    status.phase = Some("Pending".into());
    status.container_statuses = None;
    let mut unschedulable = condition("PodScheduled", "False", Some("Unschedulable"), 60);
    unschedulable.message = Some("0/3 nodes are available: 3 Insufficient memory.".into());
    status.conditions = Some(vec![unschedulable]);
    api.apply(big);
    let mut old = owned(pod("prod", "old-1"), "ReplicaSet", "old-1a");
    let status = old.status.as_mut().unwrap();
    status.phase = Some("Failed".into());
    status.reason = Some("Evicted".into());
    status.message = Some("The node was low on resource: memory.".into());
    api.apply(old);

    let app = spawn(settings(&api)).await;
    let oom = wait_for_issue(&app, "open", "oom_killed", "api").await;
    assert_eq!(oom["subject"], "prod/api-7d9f-abcde/app");
    assert_eq!(oom["severity"], "critical");
    let facts = &oom["facts"];
    for (fact, want) in [
        ("platform", Value::from("kubernetes")),
        ("namespace", "prod".into()),
        ("pod", "api-7d9f-abcde".into()),
        ("container", "app".into()),
        ("node", "node-1".into()),
        ("owner_kind", "Deployment".into()),
        ("owner_name", "api".into()),
        ("workload", "deployment/api".into()),
        ("memory_limit_bytes", (256u64 * 1024 * 1024).into()),
        ("suggested_memory_limit", "512Mi".into()),
        ("cpu_limit", "500m".into()),
        ("exit_code", 137.into()),
        ("restarts", 1.into()),
        ("reason", "OOMKilled".into()),
    ] {
        assert_eq!(facts[fact], want, "{fact}: {oom}");
    }
    assert!(
        oom["recommendation"]
            .as_str()
            .unwrap_or_default()
            .contains("kubectl set resources deployment/api -n prod -c app --limits=memory=512Mi"),
        "{oom}"
    );
    // A crash seen in its back-off is one issue: the crash escalated to its restart loop.
    let looping = wait_for_issue(&app, "open", "restart_loop", "web").await;
    assert_eq!(looping["subject"], "prod/web-00001-deployment-5c-xyz/app");
    assert_eq!(looping["facts"]["owner_kind"], "KnativeService");
    assert_eq!(looping["facts"]["knative_service"], "web");
    assert_eq!(
        looping["facts"]["exit_code"], 1,
        "the crash's facts: {looping}"
    );
    let pull = wait_for_issue(&app, "open", "image_pull_failed", "batch").await;
    assert_eq!(pull["facts"]["reason"], "ImagePullBackOff");
    assert_eq!(pull["facts"]["owner_kind"], "Job");
    let pending = wait_for_issue(&app, "open", "unschedulable", "big").await;
    assert_eq!(pending["subject"], "prod/big-0");
    assert!(
        pending["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Insufficient memory"),
        "{pending}"
    );
    let evicted = wait_for_issue(&app, "open", "evicted", "old-1a").await;
    assert_eq!(
        evicted["facts"]["detail"],
        "The node was low on resource: memory."
    );
    let open = open_issues(&app).await;
    assert_eq!(open.len(), 5, "one issue per trouble: {open:?}");
    assert!(
        !open.contains_key(&(
            "crashed".into(),
            "prod/web-00001-deployment-5c-xyz/app".into()
        )),
        "{open:?}"
    );
    wait_connected(&app, 1.0).await;
    assert!(
        api.authorizations()
            .iter()
            .all(|header| header == &format!("Bearer {TOKEN}")),
        "the kubeconfig's credentials are used: {:?}",
        api.authorizations()
    );

    // Then over the watch stream.
    let mut slow = pod("prod", "slow-1");
    container(&mut slow).ready = false;
    slow.status.as_mut().unwrap().conditions = Some(vec![condition("Ready", "False", None, 0)]);
    api.apply(slow.clone());
    let unhealthy = wait_for_issue(&app, "open", "unhealthy", "slow-1").await;
    assert_eq!(unhealthy["subject"], "prod/slow-1/app");
    // Recoveries resolve, under the same id.
    container(&mut slow).ready = true;
    slow.status.as_mut().unwrap().conditions = Some(vec![condition("Ready", "True", None, 0)]);
    api.apply(slow);
    let healthy = wait_for_issue(&app, "resolved", "unhealthy", "slow-1").await;
    assert_eq!(healthy["id"], unhealthy["id"]);
    let mut pulled = image_pull_pod("prod", "batch-x1");
    *container(&mut pulled) = container(&mut pod("prod", "batch-x1")).clone();
    api.apply(pulled);
    let done = wait_for_issue(&app, "resolved", "image_pull_failed", "batch").await;
    assert_eq!(done["id"], pull["id"]);
    assert_eq!(done["facts"]["resolution"], "image pulled");
    api.delete("prod", "old-1");
    let gone = wait_for_issue(&app, "resolved", "evicted", "old-1a").await;
    assert_eq!(gone["facts"]["resolution"], "pod deleted");
    // Another OOM kill of the same container is one more occurrence of the same issue.
    let mut again = oom_killed_pod("prod", "api-7d9f-abcde");
    container(&mut again).restart_count = 2;
    container(&mut again).last_state = Some(terminated(137, "OOMKilled", 1));
    api.apply(again.clone());
    let counted = eventually(
        "the second OOM kill to count",
        Duration::from_secs(20),
        || async {
            let open = open_issues(&app).await;
            open.get(&("oom_killed".into(), "prod/api-7d9f-abcde/app".into()))
                .filter(|(_, count)| *count == 2)
                .cloned()
        },
    )
    .await;
    assert_eq!(counted.0, oom["id"].as_str().unwrap_or_default());
    // Running and ready for the whole restart-loop window: over it.
    let status = container(&mut again);
    status.state = Some(running(60));
    api.apply(again);
    let steady = wait_for_issue(&app, "resolved", "oom_killed", "api").await;
    assert_eq!(steady["id"], oom["id"]);
    app.app.shutdown().await.expect("a clean stop");
    api.stop().await;
}

#[actix_web::test]
async fn relists_cut_streams_and_restarts_open_nothing_twice() {
    let api = KubeApi::start().await;
    api.apply(oom_killed_pod("prod", "api-7d9f-aaaaa"));
    api.apply(image_pull_pod("prod", "batch-a"));
    api.apply(image_pull_pod("prod", "batch-b"));
    let state = tempfile::tempdir().expect("a state folder");
    let app = spawn_in(state.path(), settings(&api)).await;
    eventually("three open issues", Duration::from_secs(20), || async {
        (open_issues(&app).await.len() == 3).then_some(())
    })
    .await;
    wait_connected(&app, 1.0).await;
    let before = open_issues(&app).await;
    let lists = api.lists();

    // A bookmark moves the resume point; then the history is compacted: 410 Gone, a relist.
    api.bookmark();
    api.expire();
    eventually(
        "a relist after 410 Gone",
        Duration::from_secs(20),
        || async { (api.lists() > lists && api.open_watches() > 0).then_some(()) },
    )
    .await;
    // The stream cut in the middle of an event: the watch resumes from where it was.
    let watches = api.watches();
    let version = api.resource_version().to_string();
    api.cut();
    eventually(
        "a new watch after the cut",
        Duration::from_secs(20),
        || async { (api.watches() > watches && api.open_watches() > 0).then_some(()) },
    )
    .await;
    assert_eq!(
        api.watch_versions().last(),
        Some(&version),
        "it resumes from the last resourceVersion, no relist: {:?}",
        api.watch_versions()
    );
    wait_connected(&app, 1.0).await;
    assert!(metric(&app, "watcher_kubernetes_failures_total").await >= 1.0);
    assert_eq!(
        open_issues(&app).await,
        before,
        "nothing opened or counted twice"
    );

    // Refused (RBAC) and, meanwhile, a pod deleted and the history compacted: once allowed
    // again the relist no longer shows it, and its issue resolves.
    api.forbid(true);
    wait_connected(&app, 0.0).await;
    api.delete("prod", "batch-b");
    api.expire();
    api.forbid(false);
    let gone = wait_for_issue(&app, "resolved", "image_pull_failed", "batch").await;
    assert_eq!(gone["subject"], "prod/batch-b/app");
    assert_eq!(gone["facts"]["resolution"], "pod deleted");
    wait_connected(&app, 1.0).await;
    let mut after = before.clone();
    after.remove(&("image_pull_failed".into(), "prod/batch-b/app".into()));
    assert_eq!(open_issues(&app).await, after);

    // A restart of the watcher lists the same pods: nothing new. A pod deleted while it was
    // down has its issue resolved by the first listing.
    app.shutdown().await.expect("a clean stop");
    api.delete("prod", "batch-a");
    let app = spawn_in(state.path(), settings(&api)).await;
    wait_connected(&app, 1.0).await;
    let gone = eventually(
        "the issue of the pod deleted meanwhile to resolve",
        Duration::from_secs(20),
        || async {
            let (_, body) = get(&app, "/issues?state=resolved&limit=100").await;
            issue_of(
                body["issues"].as_array()?,
                "image_pull_failed",
                "prod/batch-a/app",
            )
            .cloned()
        },
    )
    .await;
    assert_eq!(gone["facts"]["resolution"], "pod deleted");
    after.remove(&("image_pull_failed".into(), "prod/batch-a/app".into()));
    assert_eq!(
        open_issues(&app).await,
        after,
        "the OOM kill is the same issue, not counted again"
    );
    app.shutdown().await.expect("a clean stop");
    api.stop().await;
}

#[actix_web::test]
async fn forbidden_watches_are_counted_retried_and_recover() {
    let api = KubeApi::start().await;
    api.forbid(true);
    api.apply(image_pull_pod("prod", "batch-f"));
    let app = spawn(settings(&api)).await;
    eventually(
        "failures to be counted",
        Duration::from_secs(20),
        || async { (metric(&app, "watcher_kubernetes_failures_total").await >= 2.0).then_some(()) },
    )
    .await;
    assert_eq!(metric(&app, "watcher_kubernetes_connected").await, 0.0);
    let (status, _) = get(&app, "/status").await;
    assert_eq!(status, 200, "the watcher itself is fine");
    assert!(open_issues(&app).await.is_empty());
    api.forbid(false);
    wait_for_issue(&app, "open", "image_pull_failed", "batch").await;
    wait_connected(&app, 1.0).await;
    api.stop().await;
}

#[actix_web::test]
async fn namespaces_and_the_label_selector_scope_the_watch() {
    let api = KubeApi::start().await;
    api.apply(label(image_pull_pod("prod", "batch-p"), "team", "obs"));
    api.apply(image_pull_pod("prod", "batch-other-team"));
    api.apply(label(image_pull_pod("staging", "batch-s"), "team", "obs"));
    let mut config = settings(&api);
    config.kubernetes.namespaces = vec!["prod".into()];
    config.kubernetes.label_selector = Some("team=obs".into());
    let app = spawn(config).await;
    wait_for_issue(&app, "open", "image_pull_failed", "batch").await;
    wait_connected(&app, 1.0).await;
    let open = open_issues(&app).await;
    assert_eq!(
        open.keys()
            .map(|(_, subject)| subject.as_str())
            .collect::<Vec<_>>(),
        vec!["prod/batch-p/app"]
    );
    for (watch, namespace, query) in api.requests() {
        if watch {
            assert_eq!(
                query.get("allowWatchBookmarks").map(String::as_str),
                Some("true"),
                "{query:?}"
            );
        }
        assert_eq!(namespace.as_deref(), Some("prod"));
        assert_eq!(
            query.get("labelSelector").map(String::as_str),
            Some("team=obs")
        );
    }
    api.stop().await;
}

#[actix_web::test]
async fn kubernetes_watch_on_without_a_usable_configuration_refuses_to_start() {
    let mut config = WatcherConfig::for_tests();
    config.kubernetes = KubernetesSettings {
        mode: KubernetesMode::Required,
        kubeconfig: Some("/nonexistent/kubeconfig".into()),
        ..KubernetesSettings::off()
    };
    let (core, _state) = obs_testkit::test_config("watcher");
    let error = TestApp::spawn(core, async move |service: &obs_core::Service| {
        Watcher::with_config(service, config).await
    })
    .await
    .err()
    .expect("KUBERNETES_WATCH=on without a kubeconfig fails");
    let text = format!("{error:#}");
    assert!(
        text.contains("KUBERNETES_WATCH=on") && text.contains("/nonexistent/kubeconfig"),
        "{text}"
    );
}

#[actix_web::test]
async fn a_watched_pod_is_restarted_by_deleting_it_or_rolling_out_its_workload() {
    let api = KubeApi::start().await;
    api.apply(oom_killed_pod("prod", "api-7d9f-rrrrr"));
    api.apply(image_pull_pod("prod", "batch-r"));
    api.apply(pod("prod", "bare"));
    let app = spawn(settings(&api)).await;
    wait_for_issue(&app, "open", "image_pull_failed", "batch").await;
    wait_connected(&app, 1.0).await;

    // Bad input: a clear error, nothing done.
    for (path, field) in [
        ("/pods/prod/batch-r/restart?how=reboot", "how"),
        ("/pods/Prod/batch-r/restart", "namespace"),
        ("/pods/prod/batch_r/restart", "pod"),
        ("/pods/prod/bare/restart?how=rollout", "how"),
    ] {
        let (status, body) = post(&app, path, &serde_json::json!({})).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.to_string().contains(field), "{path}: {body}");
    }
    let (status, body) = post(&app, "/pods/prod/nobody/restart", &serde_json::json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert!(api.has_pod("prod", "batch-r") && api.patches().is_empty());

    // Delete: the pod goes, and its issue with it.
    let (status, body) = post(&app, "/pods/prod/batch-r/restart", &serde_json::json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["done"], "pod prod/batch-r deleted");
    assert!(!api.has_pod("prod", "batch-r"));
    let gone = wait_for_issue(&app, "resolved", "image_pull_failed", "batch").await;
    assert_eq!(gone["facts"]["resolution"], "pod deleted");
    assert!(events_of(&app, "batch")
        .await
        .iter()
        .any(|event| event["event_type"] == "restart_requested"));

    // Rollout: the Deployment's pod template gets kubectl's restartedAt annotation.
    let (status, body) = post(
        &app,
        "/pods/prod/api-7d9f-rrrrr/restart?how=rollout",
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["done"], "Deployment prod/api restarted");
    let patches = api.patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    let (path, content_type, patch) = &patches[0];
    assert_eq!(path, "/apis/apps/v1/namespaces/prod/deployments/api");
    assert_eq!(content_type, "application/merge-patch+json");
    let restarted_at = patch["spec"]["template"]["metadata"]["annotations"]
        ["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(restarted_at).is_ok(),
        "{patch}"
    );

    // RBAC refusing: a 403 that says so.
    api.forbid(true);
    let (status, body) = post(&app, "/pods/prod/bare/restart", &serde_json::json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("RBAC"), "{body}");
    api.stop().await;
}

#[actix_web::test]
async fn a_pod_restart_needs_the_token_when_one_is_set() {
    let api = KubeApi::start().await;
    api.apply(pod("prod", "bare"));
    let (mut core, _state) = obs_testkit::test_config("watcher");
    core.api_token = Some("fleet-secret".into());
    let app = crate::helpers::spawn_with(core, settings(&api)).await;
    wait_connected(&app, 1.0).await;
    let (status, body) = post(&app, "/pods/prod/bare/restart", &serde_json::json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert!(api.has_pod("prod", "bare"), "nothing done");
    let response = app
        .client
        .post(app.url("/pods/prod/bare/restart"))
        .bearer_auth("fleet-secret")
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 200);
    assert!(!api.has_pod("prod", "bare"));
    api.stop().await;
}

/// The binary, configured by the environment alone: KUBERNETES_WATCH=auto in a pod
/// (KUBERNETES_SERVICE_HOST set) watches, with the kubeconfig KUBECONFIG names.
#[actix_web::test]
async fn the_binary_watches_pods_as_its_environment_says() {
    use std::process::{Command, Stdio};

    let api = KubeApi::start().await;
    api.apply(label(image_pull_pod("prod", "batch-e"), "team", "obs"));
    api.apply(image_pull_pod("prod", "batch-not-selected"));
    let state = tempfile::tempdir().expect("a state folder");
    let port = obs_testkit::free_port();
    let mut command = Command::new(obs_testkit::binary("watcher"));
    command
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("STATE_DIR", state.path())
        .env("DOCKER_WATCH", "off")
        .env("KUBERNETES_SERVICE_HOST", "10.0.0.1")
        .env("KUBECONFIG", &api.kubeconfig)
        .env("KUBERNETES_NAMESPACES", "prod")
        .env("KUBERNETES_LABEL_SELECTOR", "team=obs")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _watcher = obs_testkit::ChildGuard(Some(command.spawn().expect("the watcher starts")));
    let http = obs_testkit::client();
    let issues = eventually(
        "the pod's issue over HTTP",
        Duration::from_secs(30),
        || async {
            let body: Value = http
                .get(format!("http://127.0.0.1:{port}/issues?state=open"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let issues = body["issues"].as_array()?.clone();
            (!issues.is_empty()).then_some(issues)
        },
    )
    .await;
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0]["subject"], "prod/batch-e/app");
    assert!(api.requests().iter().all(|(_, namespace, query)| {
        namespace.as_deref() == Some("prod")
            && query.get("labelSelector").map(String::as_str) == Some("team=obs")
    }));
    api.stop().await;
}

// --- Events, logs, slow answers ---------------------------------------------------------------

/// A core/v1 Event about `object` (`Pod` or `Node`), last seen `seconds_ago`, as the kubelet,
/// the scheduler or the node problem detector write them.
fn kube_event(
    namespace: &str,
    object: (&str, &str, Option<&str>),
    reason: &str,
    message: &str,
    count: i32,
    seconds_ago: i64,
) -> k8s_openapi::api::core::v1::Event {
    let (kind, name, field_path) = object;
    k8s_openapi::api::core::v1::Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{}", reason.to_lowercase())),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        involved_object: k8s_openapi::api::core::v1::ObjectReference {
            kind: Some(kind.into()),
            name: Some(name.into()),
            namespace: (kind == "Pod").then(|| namespace.to_string()),
            field_path: field_path.map(Into::into),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        count: Some(count),
        type_: Some("Warning".into()),
        first_timestamp: Some(ago(seconds_ago + 60)),
        last_timestamp: Some(ago(seconds_ago)),
        ..Default::default()
    }
}

async fn open_issue(app: &TestApp, kind: &str, subject: &str) -> Option<Value> {
    let (_, body) = get(app, "/issues?state=open&limit=1000").await;
    issue_of(body["issues"].as_array()?, kind, subject).cloned()
}

/// Wait until the open issue `kind` of `subject` has `fact`, and return it.
async fn wait_for_fact(app: &TestApp, kind: &str, subject: &str, fact: &str) -> Value {
    eventually(
        &format!("{kind} of {subject} to have {fact}"),
        Duration::from_secs(20),
        || async {
            open_issue(app, kind, subject)
                .await
                .filter(|issue| !issue["facts"][fact].is_null())
        },
    )
    .await
}

#[actix_web::test]
async fn events_add_their_facts_to_the_same_issues_and_old_ones_open_nothing() {
    let api = KubeApi::start().await;
    let mut big = owned(pod("prod", "big-0"), "StatefulSet", "big");
    big.spec.as_mut().unwrap().node_name = None;
    let status = big.status.as_mut().unwrap();
    status.phase = Some("Pending".into());
    status.container_statuses = None;
    status.conditions = Some(vec![condition(
        "PodScheduled",
        "False",
        Some("Unschedulable"),
        60,
    )]);
    api.apply(big);
    api.apply(image_pull_pod("prod", "batch-e1"));
    let mut slow = pod("prod", "slow-e");
    container(&mut slow).ready = false;
    slow.status.as_mut().unwrap().conditions = Some(vec![condition("Ready", "False", None, 60)]);
    api.apply(slow);
    let uid = "0c8f4a3e-1d2b-4c5d-9e8f-001122334455";
    let mut worker = pod("prod", "worker-0");
    worker.metadata.uid = Some(uid.into());
    container(&mut worker).container_id = Some("containerd://3f2a9b8c7d6e5f4a3b2c".into());
    api.apply(worker.clone());
    api.apply(pod("staging", "elsewhere"));
    let mut config = settings(&api);
    config.kubernetes.namespaces = vec!["prod".into()];
    let app = spawn(config).await;
    wait_for_issue(&app, "open", "unschedulable", "big").await;
    wait_for_issue(&app, "open", "image_pull_failed", "batch").await;
    wait_for_issue(&app, "open", "unhealthy", "slow-e").await;
    wait_connected(&app, 1.0).await;
    eventually("the Event watch", Duration::from_secs(20), || async {
        (api.event_watches() > 0).then_some(())
    })
    .await;
    let before = open_issues(&app).await;

    // The scheduler's, the kubelet's and the registry's words join the open issues: no new
    // issue, no new occurrence.
    api.event(kube_event(
        "prod",
        ("Pod", "big-0", None),
        "FailedScheduling",
        "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available",
        7,
        1,
    ));
    let pending = wait_for_fact(&app, "unschedulable", "prod/big-0", "scheduler_message").await;
    assert!(
        pending["facts"]["scheduler_message"]
            .as_str()
            .unwrap_or_default()
            .contains("Insufficient memory"),
        "{pending}"
    );
    assert_eq!(pending["facts"]["scheduling_failures"], 7);
    api.event(kube_event(
        "prod",
        ("Pod", "batch-e1", Some("spec.containers{app}")),
        "Failed",
        "Failed to pull image \"registry.example/app:1.2\": not found",
        2,
        1,
    ));
    let pull = wait_for_fact(&app, "image_pull_failed", "prod/batch-e1/app", "pull_error").await;
    assert!(pull["facts"]["pull_error"]
        .as_str()
        .unwrap_or_default()
        .contains("not found"));
    api.event(kube_event(
        "prod",
        ("Pod", "slow-e", Some("spec.containers{app}")),
        "Unhealthy",
        "Readiness probe failed: Get \"http://10.1.2.3:8080/ready?token=s3cr3t\": EOF",
        12,
        1,
    ));
    let unhealthy = wait_for_fact(&app, "unhealthy", "prod/slow-e/app", "readiness_probe").await;
    let probe = unhealthy["facts"]["readiness_probe"]
        .as_str()
        .unwrap_or_default();
    assert!(
        probe.contains("token=***") && !probe.contains("s3cr3t"),
        "redacted: {probe}"
    );
    assert_eq!(unhealthy["facts"]["readiness_failures"], 12);
    api.event(kube_event(
        "prod",
        ("Pod", "slow-e", Some("spec.containers{app}")),
        "Killing",
        "Container app failed liveness probe, will be restarted",
        3,
        1,
    ));
    let killed = wait_for_fact(&app, "unhealthy", "prod/slow-e/app", "liveness_kills").await;
    assert_eq!(killed["facts"]["liveness_kills"], 3);
    assert_eq!(
        open_issues(&app).await,
        before,
        "events opened and counted nothing"
    );

    // An OOM kill the node saw before the watcher started opens nothing; one after does, once,
    // and the pod status showing the same kill later is not a second occurrence.
    let oom_message = format!(
        "Memory cgroup out of memory: Killed process 4242 (worker) \
         oom_memcg=/kubepods/burstable/pod{uid}/3f2a9b8c7d6e5f4a3b2c"
    );
    api.event(kube_event(
        "prod",
        ("Node", "node-1", None),
        "OOMKilling",
        &oom_message,
        1,
        3600,
    ));
    // A marker after it: once its facts are in, the old OOM event was handled.
    api.event(kube_event(
        "prod",
        ("Pod", "big-0", None),
        "FailedScheduling",
        "0/4 nodes are available: 4 Insufficient memory.",
        8,
        0,
    ));
    eventually("the marker event", Duration::from_secs(20), || async {
        open_issue(&app, "unschedulable", "prod/big-0")
            .await
            .filter(|issue| issue["facts"]["scheduling_failures"] == 8)
    })
    .await;
    assert!(
        open_issue(&app, "oom_killed", "prod/worker-0/app")
            .await
            .is_none(),
        "an event from before the start opens nothing"
    );
    let mut fresh = kube_event(
        "prod",
        ("Node", "node-1", None),
        "OOMKilling",
        &oom_message,
        1,
        0,
    );
    fresh.metadata.name = Some("node-1.oom-2".into());
    api.event(fresh);
    let oom = wait_for_issue(&app, "open", "oom_killed", "worker-0").await;
    assert_eq!(oom["subject"], "prod/worker-0/app");
    assert_eq!(oom["facts"]["signal"], "node_oom_event");
    assert!(oom["facts"]["node_oom_message"]
        .as_str()
        .unwrap_or_default()
        .contains("Killed process 4242"));
    let status = container(&mut worker);
    status.restart_count = 1;
    status.last_state = Some(terminated(137, "OOMKilled", 1));
    status.state = Some(running(0));
    api.apply(worker);
    let amended = wait_for_fact(&app, "oom_killed", "prod/worker-0/app", "exit_code").await;
    assert_eq!(
        amended["count"], 1,
        "the same kill, counted once: {amended}"
    );
    assert_eq!(amended["id"], oom["id"]);

    // Events of pods outside the watched namespaces change nothing; the Event watch asked for
    // the watched namespace only.
    api.event(kube_event(
        "staging",
        ("Pod", "elsewhere", Some("spec.containers{app}")),
        "Killing",
        "Container app failed liveness probe, will be restarted",
        1,
        0,
    ));
    assert!(api
        .event_requests()
        .iter()
        .all(|(_, namespace, _)| namespace.as_deref() == Some("prod")));
    app.app.shutdown().await.expect("a clean stop");
    api.stop().await;
}

#[actix_web::test]
async fn a_dead_containers_last_log_lines_join_its_issue_once_per_restart() {
    let api = KubeApi::start().await;
    let mut previous: String = (1..=40).map(|i| format!("log line {i}\n")).collect();
    previous.push_str("connecting with DATABASE_PASSWORD=hunter2\nfatal: out of memory\n");
    api.set_logs(
        "prod/api-7d9f-logs1/app",
        "starting again\n",
        Some(&previous),
    );
    api.apply(oom_killed_pod("prod", "api-7d9f-logs1"));
    let app = spawn(settings(&api)).await;
    let oom = wait_for_fact(
        &app,
        "oom_killed",
        "prod/api-7d9f-logs1/app",
        "last_log_lines",
    )
    .await;
    let lines: Vec<&str> = oom["facts"]["last_log_lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(lines.len(), 20, "{lines:?}");
    assert_eq!(lines.last(), Some(&"fatal: out of memory"));
    assert!(
        lines.contains(&"connecting with DATABASE_PASSWORD=***"),
        "{lines:?}"
    );
    assert!(!oom.to_string().contains("hunter2"), "redacted: {oom}");
    assert_eq!(oom["facts"]["last_log_source"], "previous container");
    assert_eq!(oom["count"], 1, "the logs are facts, not an occurrence");
    let asked = api.log_requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let (asked_pod, query) = &asked[0];
    assert_eq!(asked_pod, "prod/api-7d9f-logs1");
    for (parameter, want) in [
        ("container", "app"),
        ("previous", "true"),
        ("tailLines", "20"),
        ("limitBytes", "4096"),
    ] {
        assert_eq!(
            query.get(parameter).map(String::as_str),
            Some(want),
            "{query:?}"
        );
    }

    // A relist shows the same restart: not fetched again.
    let lists = api.lists();
    api.expire();
    eventually("the relist", Duration::from_secs(20), || async {
        (api.lists() > lists && api.open_watches() > 0).then_some(())
    })
    .await;
    wait_connected(&app, 1.0).await;

    // RBAC refusing pods/log: the issue says why there are no lines; the watch goes on.
    api.forbid_only("pods/log", true);
    let failures = metric(&app, "watcher_kubernetes_failures_total").await;
    let mut crashed = pod("prod", "crashy");
    let status = container(&mut crashed);
    status.restart_count = 1;
    status.last_state = Some(terminated(2, "Error", 1));
    status.state = Some(running(1));
    api.apply(crashed);
    let refused = wait_for_fact(&app, "crashed", "prod/crashy/app", "logs_unavailable").await;
    let why = refused["facts"]["logs_unavailable"]
        .as_str()
        .unwrap_or_default();
    assert!(why.starts_with("403 Forbidden"), "{why}");
    assert!(metric(&app, "watcher_kubernetes_failures_total").await > failures);
    // No previous container to read (the API server answers 400): said too.
    api.forbid_only("pods/log", false);
    let mut ghost = pod("prod", "ghost");
    let status = container(&mut ghost);
    status.restart_count = 3;
    status.last_state = Some(terminated(1, "Error", 1));
    status.state = Some(waiting("CrashLoopBackOff"));
    api.apply(ghost);
    let ghost = wait_for_fact(&app, "restart_loop", "prod/ghost/app", "logs_unavailable").await;
    assert!(
        ghost["facts"]["logs_unavailable"]
            .as_str()
            .unwrap_or_default()
            .starts_with("400 BadRequest"),
        "{ghost}"
    );
    wait_connected(&app, 1.0).await;
    assert_eq!(
        api.log_requests()
            .iter()
            .filter(|(pod, _)| pod == "prod/api-7d9f-logs1")
            .count(),
        1,
        "once per restart"
    );
    app.app.shutdown().await.expect("a clean stop");
    api.stop().await;
}

#[actix_web::test]
async fn hanging_lists_and_log_fetches_time_out_and_stall_nothing_else() {
    let api = KubeApi::start().await;
    api.apply(image_pull_pod("prod", "batch-h"));
    api.hang(true);
    let mut config = settings(&api);
    config.kubernetes.timeout = Duration::from_secs(2);
    let app = spawn(config).await;
    // The list hangs mid-answer: given up after the timeout, counted, retried.
    eventually(
        "hung lists to time out and be counted",
        Duration::from_secs(30),
        || async {
            (api.lists() >= 2 && metric(&app, "watcher_kubernetes_failures_total").await >= 1.0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(metric(&app, "watcher_kubernetes_connected").await, 0.0);
    // Meanwhile the HTTP API and the heartbeats answer at once.
    let started = std::time::Instant::now();
    crate::helpers::heartbeat(&app, serde_json::json!({"service": "during-hang"})).await;
    let (status, _) = get(&app, "/status").await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(crate::helpers::service_status(&app, "during-hang")
        .await
        .is_some());
    api.hang(false);
    wait_for_issue(&app, "open", "image_pull_failed", "batch").await;
    wait_connected(&app, 1.0).await;

    // An idle watch is ended by the server (timeoutSeconds, under the read timeout) and
    // resumed: no failure.
    let failures = metric(&app, "watcher_kubernetes_failures_total").await;
    let watches = api.watches();
    let requested: Vec<String> = api
        .requests()
        .iter()
        .filter(|(watch, _, _)| *watch)
        .filter_map(|(_, _, query)| query.get("timeoutSeconds").cloned())
        .collect();
    assert!(
        !requested.is_empty() && requested.iter().all(|seconds| seconds == "1"),
        "{requested:?}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(api.watches() > watches, "watches ended and resumed");
    assert_eq!(
        metric(&app, "watcher_kubernetes_failures_total").await,
        failures,
        "an idle watch is no failure"
    );
    assert_eq!(metric(&app, "watcher_kubernetes_connected").await, 1.0);

    // A log fetch that hangs: the issue says so after the timeout; the watch goes on.
    api.hang(true);
    let mut crashed = pod("prod", "crashy-h");
    let status = container(&mut crashed);
    status.restart_count = 1;
    status.last_state = Some(terminated(2, "Error", 1));
    status.state = Some(running(1));
    api.apply(crashed);
    eventually("the log fetch to hang", Duration::from_secs(20), || async {
        (api.stalled() > 0).then_some(())
    })
    .await;
    let crash = wait_for_fact(&app, "crashed", "prod/crashy-h/app", "logs_unavailable").await;
    assert_eq!(crash["facts"]["logs_unavailable"], "no answer within 2 s");
    api.apply(image_pull_pod("prod", "batch-h2"));
    eventually("the watch to go on", Duration::from_secs(20), || async {
        open_issue(&app, "image_pull_failed", "prod/batch-h2/app").await
    })
    .await;
    api.hang(false);
    app.app.shutdown().await.expect("a clean stop");
    api.stop().await;
}

#[actix_web::test]
async fn events_refused_by_rbac_are_counted_and_pods_are_still_watched() {
    let api = KubeApi::start().await;
    api.forbid_only("events", true);
    api.apply(image_pull_pod("prod", "batch-rbac"));
    let app = spawn(settings(&api)).await;
    wait_for_issue(&app, "open", "image_pull_failed", "batch").await;
    eventually(
        "the refused Event watch to be counted",
        Duration::from_secs(20),
        || async { (metric(&app, "watcher_kubernetes_failures_total").await >= 2.0).then_some(()) },
    )
    .await;
    // Pods are watched: connected is about them.
    wait_connected(&app, 1.0).await;
    api.forbid_only("events", false);
    api.event(kube_event(
        "prod",
        ("Pod", "batch-rbac", Some("spec.containers{app}")),
        "BackOff",
        "Back-off pulling image \"registry.example/app:1.2\"",
        4,
        0,
    ));
    wait_for_fact(
        &app,
        "image_pull_failed",
        "prod/batch-rbac/app",
        "pull_back_off",
    )
    .await;
    app.app.shutdown().await.expect("a clean stop");
    api.stop().await;
}
