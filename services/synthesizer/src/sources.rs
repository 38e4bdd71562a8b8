//! What the other roles know, asked fresh for every page and report: the watcher's status
//! and recent events (WATCHER_URL), and the archive's issue records of the last 24 h
//! (ARCHIVIST_URL). Each answer is either the facts or why they are missing; a peer that is
//! down, slow or not configured makes a page with a gap and a note, never an error.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use obs_model::{Event, EventList, Record, WatcherStatus};
use serde::{Deserialize, Serialize};

/// Pages of archive records read for one uptime window, at most (1000 records each).
const MAX_ARCHIVE_PAGES: usize = 20;
const ARCHIVE_PAGE: usize = 1000;

/// One peer's answer, or why there is none.
#[derive(Debug, Clone)]
pub enum Fetched<T> {
    Got(T),
    Unavailable(String),
}

impl<T> Fetched<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Fetched::Got(value) => Some(value),
            Fetched::Unavailable(_) => None,
        }
    }

    fn from_result(result: anyhow::Result<T>) -> Self {
        match result {
            Ok(value) => Fetched::Got(value),
            Err(error) => Fetched::Unavailable(format!("{error:#}")),
        }
    }
}

/// The archive's issue records in a window; `truncated` when there were more than were read.
#[derive(Debug, Clone, Default)]
pub struct ArchiveWindow {
    pub records: Vec<Record>,
    pub truncated: bool,
}

/// Everything the peers said, for one report.
#[derive(Debug, Clone)]
pub struct Facts {
    pub status: Fetched<WatcherStatus>,
    pub events: Fetched<Vec<Event>>,
    pub archive: Fetched<ArchiveWindow>,
}

/// How a source fared, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub name: String,
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct RecordPage {
    records: Vec<Record>,
    next: Option<String>,
}

/// Asks the peers; cheap to clone.
#[derive(Clone)]
pub struct Sources {
    watcher: Option<String>,
    archivist: Option<String>,
    http: reqwest::Client,
}

impl Sources {
    /// `api_token`: the fleet's API_TOKEN, sent with every request (archived records are a
    /// read that needs it).
    pub fn new(
        watcher: Option<String>,
        archivist: Option<String>,
        timeout: Duration,
        api_token: Option<&str>,
    ) -> anyhow::Result<Sources> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = api_token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .context("API_TOKEN is not a valid header value")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(Sources {
            watcher,
            archivist,
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .default_headers(headers)
                .build()
                .context("building the HTTP client")?,
        })
    }

    /// Ask everyone at once; `since` starts the uptime window.
    pub async fn gather(&self, events: usize, since: DateTime<Utc>) -> Facts {
        let events_path = format!("/events?limit={events}");
        let (status, recent, archive) = futures_util::join!(
            self.watcher_get::<WatcherStatus>("/status"),
            self.watcher_get::<EventList>(&events_path),
            self.issue_records(since),
        );
        Facts {
            status: Fetched::from_result(status),
            events: Fetched::from_result(recent.map(|list| list.events)),
            archive: Fetched::from_result(archive),
        }
    }

    async fn watcher_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let base = self.watcher.as_deref().context("WATCHER_URL is not set")?;
        self.get_json(&format!("{base}{path}")).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|error| anyhow::anyhow!(describe(&error)))
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "GET {url}: answered {status}");
        response
            .json::<T>()
            .await
            .with_context(|| format!("GET {url}: not the expected JSON"))
    }

    /// Issue records since `since`, page after page, up to a bound.
    async fn issue_records(&self, since: DateTime<Utc>) -> anyhow::Result<ArchiveWindow> {
        let base = self
            .archivist
            .as_deref()
            .context("ARCHIVIST_URL is not set")?;
        let since = since.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut window = ArchiveWindow::default();
        let mut after: Option<String> = None;
        for _ in 0..MAX_ARCHIVE_PAGES {
            let mut url = reqwest::Url::parse(&format!("{base}/v1/records"))
                .with_context(|| format!("ARCHIVIST_URL '{base}'"))?;
            url.query_pairs_mut()
                .append_pair("kind", "issue")
                .append_pair("since", &since)
                .append_pair("limit", &ARCHIVE_PAGE.to_string());
            if let Some(after) = &after {
                url.query_pairs_mut().append_pair("after", after);
            }
            let page: RecordPage = self.get_json(url.as_str()).await?;
            window.records.extend(page.records);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(window),
            }
        }
        window.truncated = true;
        Ok(window)
    }
}

/// A connection error in a few words ("connection refused", "timed out") rather than
/// reqwest's nested chain.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        error.to_string()
    }
}

impl Facts {
    pub fn sources(&self) -> Vec<SourceStatus> {
        let watcher_error = [self.status_error(), self.events_error()]
            .into_iter()
            .flatten()
            .next();
        vec![
            SourceStatus {
                name: "watcher".into(),
                available: watcher_error.is_none(),
                error: watcher_error,
            },
            SourceStatus {
                name: "archivist".into(),
                available: self.archive.ok().is_some(),
                error: match &self.archive {
                    Fetched::Unavailable(why) => Some(why.clone()),
                    Fetched::Got(window) if window.truncated => Some(format!(
                        "more than {} issue records in the window; uptime is drawn from the first",
                        MAX_ARCHIVE_PAGES * ARCHIVE_PAGE
                    )),
                    Fetched::Got(_) => None,
                },
            },
        ]
    }

    fn status_error(&self) -> Option<String> {
        match &self.status {
            Fetched::Unavailable(why) => Some(why.clone()),
            Fetched::Got(_) => None,
        }
    }

    fn events_error(&self) -> Option<String> {
        match &self.events {
            Fetched::Unavailable(why) => Some(why.clone()),
            Fetched::Got(_) => None,
        }
    }
}
