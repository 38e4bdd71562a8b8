use super::*;

fn settings() -> Settings {
    Settings {
        restart_loop_threshold: 3,
        restart_loop_window: Duration::from_secs(60),
        not_ready_after: Duration::from_secs(30),
        unschedulable_after: Duration::from_secs(30),
    }
}

fn pod(container: serde_json::Value) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "api-1", "namespace": "prod"},
        "status": {"phase": "Running", "containerStatuses": [container]}
    }))
    .expect("a pod")
}

fn kinds(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Raise(d) => Some(format!("raise {}", d.kind.as_str())),
            Outcome::RaiseIfNew(d) => Some(format!("new {}", d.kind.as_str())),
            _ => None,
        })
        .collect()
}

fn crashed_at(restarts: i32, finished: &str) -> serde_json::Value {
    serde_json::json!({
        "name": "app", "image": "app:1", "imageID": "", "ready": false,
        "restartCount": restarts,
        "state": {"waiting": {"reason": "ContainerCreating"}},
        "lastState": {"terminated": {"exitCode": 3, "reason": "Error", "finishedAt": finished}}
    })
}

#[test]
fn a_termination_counts_once_however_often_the_pod_is_seen() {
    let mut table = PodTable::default();
    let now = Utc::now();
    let finished = (now - chrono::Duration::seconds(2)).to_rfc3339();
    let first = table.observe(None, pod(crashed_at(1, &finished)), now, &settings());
    assert_eq!(kinds(&first), vec!["new crashed"]);
    // The same pod again (a relist, a MODIFIED for something else): nothing new.
    let again = table.observe(None, pod(crashed_at(1, &finished)), now, &settings());
    assert!(kinds(&again).is_empty(), "{again:?}");
    assert!(kinds(&table.sweep(now, &settings())).is_empty());
    // A new termination is a new occurrence.
    let later = (now - chrono::Duration::seconds(1)).to_rfc3339();
    let next = table.observe(None, pod(crashed_at(2, &later)), now, &settings());
    assert_eq!(kinds(&next), vec!["raise crashed"]);
    // Restarts past the threshold within the window: a restart loop, raised once.
    let last = now.to_rfc3339();
    let looping = table.observe(None, pod(crashed_at(4, &last)), now, &settings());
    assert_eq!(kinds(&looping), vec!["raise crashed", "raise restart_loop"]);
}

#[test]
fn an_old_termination_found_at_start_is_not_news() {
    let mut table = PodTable::default();
    let now = Utc::now();
    let long_ago = (now - chrono::Duration::hours(3)).to_rfc3339();
    let outcomes = table.observe(None, pod(crashed_at(1, &long_ago)), now, &settings());
    assert!(kinds(&outcomes).is_empty(), "{outcomes:?}");
}

#[test]
fn not_ready_is_unhealthy_only_past_its_grace_and_resolves_when_ready() {
    let mut table = PodTable::default();
    let now = Utc::now();
    let not_ready = serde_json::json!({
        "name": "app", "image": "app:1", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"running": {"startedAt": now.to_rfc3339()}}
    });
    let first = table.observe(None, pod(not_ready.clone()), now, &settings());
    assert!(kinds(&first).is_empty(), "{first:?}");
    let later = now + chrono::Duration::seconds(31);
    assert_eq!(
        kinds(&table.sweep(later, &settings())),
        vec!["raise unhealthy"]
    );
    assert!(
        kinds(&table.sweep(later, &settings())).is_empty(),
        "raised once"
    );
    let mut ready = not_ready;
    ready["ready"] = true.into();
    let outcomes = table.observe(None, pod(ready), later, &settings());
    assert!(outcomes.iter().any(|outcome| matches!(
        outcome,
        Outcome::Resolve { kind: IssueKind::Unhealthy, subject, .. } if subject == "prod/api-1/app"
    )));
}

#[test]
fn a_listing_that_no_longer_shows_a_pod_resolves_its_issues() {
    let mut table = PodTable::default();
    let now = Utc::now();
    table.observe(
        None,
        pod(crashed_at(1, &now.to_rfc3339())),
        now,
        &settings(),
    );
    table.begin_listing("other");
    assert!(
        table.end_listing("other").is_empty(),
        "another namespace's listing"
    );
    table.begin_listing("");
    let outcomes = table.end_listing("");
    assert!(outcomes.iter().any(|outcome| matches!(
        outcome,
        Outcome::ResolveAll { subject, why: "pod deleted" } if subject == "prod/api-1/app"
    )));
    assert!(table.is_empty());
}

#[test]
fn containers_stopped_with_their_deleted_pod_are_not_crashes() {
    let mut table = PodTable::default();
    let now = Utc::now();
    let running = serde_json::json!({
        "name": "app", "image": "app:1", "imageID": "", "ready": true, "restartCount": 0,
        "state": {"running": {"startedAt": now.to_rfc3339()}}
    });
    table.observe(None, pod(running), now, &settings());
    let mut stopping = pod(serde_json::json!({
        "name": "app", "image": "app:1", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 143, "reason": "Error", "finishedAt": now.to_rfc3339()}}
    }));
    stopping.metadata.deletion_timestamp = stopping
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c[0].state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.finished_at.clone());
    let outcomes = table.observe(None, stopping, now, &settings());
    assert!(kinds(&outcomes).is_empty(), "{outcomes:?}");
}

#[test]
fn a_node_oom_kill_counts_once_with_the_status_showing_it() {
    let mut table = PodTable::default();
    let now = Utc::now();
    let started = now - chrono::Duration::seconds(600);
    let mut running: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "api-1", "namespace": "prod",
            "uid": "0c8f4a3e-1d2b-4c5d-9e8f-001122334455"},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "app", "image": "app:1", "imageID": "", "ready": true, "restartCount": 0,
            "containerID": "containerd://3f2a9b8c7d6e5f4a3b2c",
            "state": {"running": {"startedAt": started.to_rfc3339()}}}]}
    }))
    .expect("a pod");
    assert!(kinds(&table.observe(None, running.clone(), now, &settings())).is_empty());
    let event = |seconds_ago: i64| -> k8s_openapi::api::core::v1::Event {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-1.oom", "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": "node-1"},
            "reason": "OOMKilling",
            "message": "Memory cgroup out of memory: Killed process 4242 (worker) oom_memcg=/kubepods/burstable/pod0c8f4a3e-1d2b-4c5d-9e8f-001122334455/3f2a9b8c7d6e5f4a3b2c",
            "lastTimestamp": (now - chrono::Duration::seconds(seconds_ago)).to_rfc3339()
        }))
        .expect("an event")
    };
    let signal =
        |seconds_ago| super::super::pod_events::signal(&event(seconds_ago)).expect("a signal");
    // From before the start: facts only.
    assert!(kinds(&table.event(signal(3600), now - chrono::Duration::seconds(60))).is_empty());
    let raised = table.event(signal(0), now - chrono::Duration::seconds(60));
    assert_eq!(kinds(&raised), vec!["raise oom_killed"], "{raised:?}");
    // The same event again (a relist): nothing.
    assert!(kinds(&table.event(signal(0), now - chrono::Duration::seconds(60))).is_empty());
    // Not steady right after the kill, though running for long.
    assert!(table
        .sweep(now, &settings())
        .iter()
        .all(|o| !matches!(o, Outcome::Resolve { .. })));
    // The status showing the same kill: facts, not an occurrence.
    running
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()[0]
        .last_state = serde_json::from_value(serde_json::json!({"terminated": {"exitCode": 137,
            "reason": "OOMKilled", "finishedAt": now.to_rfc3339()}}))
    .ok();
    let shown = table.observe(None, running, now, &settings());
    assert!(kinds(&shown).is_empty(), "{shown:?}");
    assert!(shown.iter().any(|o| matches!(o, Outcome::Amend { .. })));
}
