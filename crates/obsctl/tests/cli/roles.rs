//! The curator, the planner and the synthesizer served in this process on loopback ports (their real
//! servers, as the roles' own tests run them), what they are fed, and obsctl pointed at them.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use curator::{Curator, CuratorConfig};
use obs_core::Service;
use obs_model::{
    Incident, IncidentChange, IncidentSource, IncidentState, Issue, IssueKind, IssueState, Severity,
};
use obs_testkit::{test_config, TestApp};
use planner::{Planner, PlannerConfig};
use synthesizer::{Synthesizer, SynthesizerConfig};
use ulid::Ulid;

use crate::support::{obsctl_command, run, Run};

/// A role in this process with its state in a temporary folder; stops on drop.
pub struct Role {
    pub app: TestApp,
    _state: tempfile::TempDir,
}

impl Role {
    pub fn url(&self) -> &str {
        &self.app.address
    }

    pub async fn curator() -> Role {
        Role::curator_with_token(None).await
    }

    /// A curator whose changes need `API_TOKEN` when `token` is set.
    pub async fn curator_with_token(token: Option<&str>) -> Role {
        let (mut config, state) = test_config("curator");
        config.api_token = token.map(str::to_string);
        let app = TestApp::spawn(config, async move |service: &Service| {
            Curator::with_config(service, CuratorConfig::for_tests()).await
        })
        .await
        .expect("the curator starts");
        Role { app, _state: state }
    }

    pub async fn planner() -> Role {
        let (config, state) = test_config("planner");
        let app = TestApp::spawn(config, async move |service: &Service| {
            Planner::with_config(service, PlannerConfig::for_tests()).await
        })
        .await
        .expect("the planner starts");
        Role { app, _state: state }
    }

    /// A synthesizer with no peers: its report is made of the plans it is sent.
    pub async fn synthesizer() -> Role {
        let (config, state) = test_config("synthesizer");
        let app = TestApp::spawn(config, async move |service: &Service| {
            Synthesizer::with_config(service, SynthesizerConfig::for_tests()).await
        })
        .await
        .expect("the synthesizer starts");
        Role { app, _state: state }
    }

    /// POST a JSON batch to `path`; it must be accepted.
    pub async fn feed<T: serde::Serialize>(&self, path: &str, items: &[T]) {
        let response = self
            .app
            .client
            .post(self.app.url(path))
            .json(items)
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {path}: {error}"));
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "POST {path}: {status} {body}");
    }
}

/// `obsctl --<role>-url <url> <args>` to completion.
pub async fn obsctl_at(role: &str, url: &str, args: &[&str]) -> Run {
    obsctl_at_env(role, url, args, &[]).await
}

pub async fn obsctl_at_env(role: &str, url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let flag = format!("--{role}-url");
    let mut all = vec![flag.as_str(), url];
    all.extend_from_slice(args);
    run(obsctl_command(&all).envs(env.iter().copied())).await
}

/// An issue as a watcher sends it; the curator's incident takes its id.
pub fn issue(id: &str, service: &str, kind: IssueKind, severity: Severity) -> Issue {
    let now = Utc::now();
    Issue {
        id: Ulid::from_string(id).expect("a ULID"),
        kind,
        service: service.into(),
        subject: format!("{service}-1"),
        severity,
        state: IssueState::Open,
        message: format!("{service}-1: {}", kind.as_str()),
        recommendation: format!("look at {service}-1"),
        first_seen: now - Duration::minutes(5),
        last_seen: now,
        resolved_at: None,
        count: 2,
        facts: BTreeMap::from([("exit_code".to_string(), serde_json::json!(137))]),
    }
}

/// An incident as the curator forwards it to the planner.
pub fn incident(id: &str, service: &str, state: IncidentState, revision: u64) -> Incident {
    let now = Utc::now();
    let container = format!("{service}-1");
    Incident {
        id: Ulid::from_string(id).expect("a ULID"),
        fingerprint: format!("{service}/oom_killed/{container}"),
        source: IncidentSource::Watcher,
        service: service.into(),
        kind: IssueKind::OomKilled,
        subject: container.clone(),
        severity: Severity::Critical,
        state,
        title: format!("{container} killed: out of memory"),
        message: format!("Container {container} killed - out of memory (256 MiB)"),
        recommendation: "Raise the memory limit".into(),
        first_seen: now - Duration::minutes(5),
        last_seen: now,
        updated_at: now,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: (state == IncidentState::Resolved).then_some(now),
        resolved_by: (state == IncidentState::Resolved).then(|| "watcher".to_string()),
        comment: None,
        count: 1,
        reopened: 0,
        flapping: false,
        silenced: None,
        issue_ids: Vec::new(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        facts: BTreeMap::from([
            ("container".to_string(), serde_json::json!(container)),
            (
                "memory_limit_bytes".to_string(),
                serde_json::json!(268_435_456),
            ),
            ("exit_code".to_string(), serde_json::json!(137)),
            ("restarts".to_string(), serde_json::json!(2)),
        ]),
        change: if state == IncidentState::Resolved {
            IncidentChange::Resolved
        } else {
            IncidentChange::Opened
        },
        notify: true,
        revision,
    }
}
