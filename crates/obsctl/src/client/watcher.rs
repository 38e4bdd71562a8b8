//! The watcher's API, typed with the obs-model wire types.

use obs_model::{ContainerLogs, EventIn, EventList, HeartbeatIn, Issue, IssueList, WatcherStatus};

use super::{ApiClient, ClientError};
use crate::cli::IssueFilter;

pub use obs_model::Event;

/// The most events one request asks for; the watcher keeps a bounded ring anyway.
pub const MAX_EVENTS: u32 = 10_000;

#[derive(Debug, Clone)]
pub struct WatcherClient {
    api: ApiClient,
}

impl WatcherClient {
    pub fn new(api: ApiClient) -> Self {
        WatcherClient { api }
    }

    /// The role's API as such (what every role serves alike: dead letters).
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    pub fn base_url(&self) -> &str {
        self.api.base_url()
    }

    /// The watcher's first page of services (down first), every service counted.
    pub async fn status(&self) -> Result<WatcherStatus, ClientError> {
        self.api.get(&["status"], &[]).await
    }

    /// Every service: the pages of `/status` followed to the end, as one status.
    pub async fn status_all(&self) -> Result<WatcherStatus, ClientError> {
        let limit = ("limit", obs_model::page::MAX_PAGE.to_string());
        let mut status: WatcherStatus = self
            .api
            .get(&["status"], std::slice::from_ref(&limit))
            .await?;
        while let Some(after) = status.services_next.take() {
            let page: WatcherStatus = self
                .api
                .get(&["status"], &[limit.clone(), ("after", after)])
                .await?;
            status.services.extend(page.services);
            status.services_next = page.services_next;
        }
        Ok(status)
    }

    /// The latest `limit` events, oldest first (whatever order the watcher sends them in).
    pub async fn events(
        &self,
        limit: u32,
        service: Option<&str>,
    ) -> Result<Vec<Event>, ClientError> {
        let mut query = vec![("limit", limit.min(MAX_EVENTS).to_string())];
        if let Some(service) = service {
            query.push(("service", service.to_string()));
        }
        let mut events = self.api.get::<EventList>(&["events"], &query).await?.events;
        events.sort_by_key(|event| (event.timestamp, event.id));
        Ok(events)
    }

    /// Issues, worst first, then the most recently seen first.
    pub async fn issues(&self, filter: IssueFilter) -> Result<Vec<Issue>, ClientError> {
        let query: Vec<(&str, String)> = filter
            .query_value()
            .map(|state| vec![("state", state.to_string())])
            .unwrap_or_default();
        let mut issues = self.api.get::<IssueList>(&["issues"], &query).await?.issues;
        sort_issues(&mut issues);
        Ok(issues)
    }

    /// A container's last `lines` log lines, stdout and stderr interleaved.
    pub async fn logs(&self, container: &str, lines: u32) -> Result<ContainerLogs, ClientError> {
        let query = [
            ("container", container.to_string()),
            ("lines", lines.to_string()),
        ];
        self.api.get(&["logs"], &query).await
    }

    pub async fn heartbeat(&self, beat: &HeartbeatIn) -> Result<serde_json::Value, ClientError> {
        self.api.post(&["heartbeat"], &[], Some(beat)).await
    }

    /// `/ping/{service}/fail`: the service says it failed (not a missed beat); down until its
    /// next heartbeat.
    pub async fn fail(
        &self,
        service: &str,
        detail: Option<&str>,
        timeout_seconds: Option<f64>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut query = Vec::new();
        if let Some(detail) = detail {
            query.push(("detail", detail.to_string()));
        }
        if let Some(seconds) = timeout_seconds {
            query.push(("timeout_seconds", seconds.to_string()));
        }
        self.api
            .post::<()>(&["ping", service, "fail"], &query, None)
            .await
    }

    pub async fn post_event(&self, event: &EventIn) -> Result<serde_json::Value, ClientError> {
        self.api.post(&["events"], &[], Some(event)).await
    }
}

/// Worst first; among equals the most recently seen first.
pub fn sort_issues(issues: &mut [Issue]) {
    issues.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.last_seen.cmp(&a.last_seen))
    });
}
