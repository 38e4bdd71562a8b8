//! What the other roles know, asked fresh for every page and report: the watcher's status
//! and recent events (WATCHER_URL), and the archive's issue records of the last 24 h
//! (ARCHIVIST_URL). Each answer is either the facts or why they are missing; a peer that is
//! down, slow or not configured makes a page with a gap and a note, never an error.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use obs_model::page::{self, Cursor};
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
    /// Only the watcher's services the report's page can show (see [`WatcherPages`]); its
    /// `service_counts` counts them all.
    pub status: Fetched<WatcherStatus>,
    /// The watcher has services past those fetched, which sort after the page asked for.
    pub status_more: bool,
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

    /// Ask everyone at once; `since` starts the uptime window, `pages` says which of the
    /// watcher's services the report's page needs.
    pub async fn gather(&self, events: usize, since: DateTime<Utc>, pages: &WatcherPages) -> Facts {
        let events_path = format!("/events?limit={events}");
        let (status, recent, archive) = futures_util::join!(
            self.watcher_status(pages),
            self.watcher_get::<EventList>(&events_path),
            self.issue_records(since),
        );
        let (status, status_more) = match status {
            Ok((status, more)) => (Fetched::Got(status), more),
            Err(error) => (Fetched::from_result(Err(error)), false),
        };
        Facts {
            status,
            status_more,
            events: Fetched::from_result(recent.map(|list| list.events)),
            archive: Fetched::from_result(archive),
        }
    }

    /// The down services from the page's cursor on (unless the page starts past them) and a
    /// page of up ones, each one request of at most [`page::MAX_PAGE`]: at 100,000 services
    /// about 200 KB instead of the watcher's every service (11 MB). Whether more remain.
    async fn watcher_status(&self, pages: &WatcherPages) -> anyhow::Result<(WatcherStatus, bool)> {
        let down = pages
            .down
            .as_ref()
            .map(|after| status_path("down", pages.limit, after.as_ref()));
        let up = status_path("up", page::MAX_PAGE, pages.up.as_ref());
        let named = (!pages.named.is_empty()).then(|| {
            format!(
                "/status?limit={}&names={}",
                page::MAX_PAGE,
                pages.named.join(",")
            )
        });
        let optional = |path: Option<String>| async move {
            match path {
                Some(path) => self.watcher_get::<WatcherStatus>(&path).await.map(Some),
                None => Ok(None),
            }
        };
        let (down, up, named) = futures_util::join!(
            optional(down),
            self.watcher_get::<WatcherStatus>(&up),
            optional(named),
        );
        let (down, mut status, named) = (down?, up?, named?);
        if status.service_counts.is_none() {
            // A watcher from before paging ignores the query and lists every service.
            return Ok((status, false));
        }
        let mut more = status.services_next.is_some();
        let up = std::mem::take(&mut status.services);
        if let Some(down) = down {
            more |= down.services_next.is_some();
            status.services = down.services;
        }
        status.services.extend(up);
        if let Some(named) = named {
            // Each service once: a named one may be on a page already.
            let listed: std::collections::HashSet<String> = status
                .services
                .iter()
                .map(|service| service.service.clone())
                .collect();
            status.services.extend(
                named
                    .services
                    .into_iter()
                    .filter(|service| !listed.contains(&service.service)),
            );
        }
        Ok((status, more))
    }

    async fn watcher_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let base = self.watcher.as_deref().context("WATCHER_URL is not set")?;
        self.get_json(&format!("{base}{path}")).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        // Errors are shown on /sources and in the logs: the peer URL may carry credentials.
        let shown = obs_core::redact::url(url);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|error| anyhow::anyhow!(describe(obs_core::redact::reqwest_error(error))))
            .with_context(|| format!("GET {shown}"))?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "GET {shown}: answered {status}");
        response
            .json::<T>()
            .await
            .map_err(obs_core::redact::reqwest_error)
            .with_context(|| format!("GET {shown}: not the expected JSON"))
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
                .with_context(|| format!("ARCHIVIST_URL '{}'", obs_core::redact::url(base)))?;
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

/// Which of the watcher's services a report's page needs, in the watcher's own cursors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherPages {
    /// Down services wanted (they come first on the page): from the start (`Some(None)`)
    /// or after a cursor; `None` when the page starts past them.
    pub down: Option<Option<Cursor>>,
    pub limit: usize,
    /// Up services from the start or after a cursor.
    pub up: Option<Cursor>,
    /// Services asked about by name (those open incidents name), wherever they sort.
    pub named: Vec<String>,
}

fn status_path(state: &str, limit: usize, after: Option<&Cursor>) -> String {
    let mut path = format!("/status?state={state}&limit={limit}");
    if let Some(after) = after {
        path.push_str("&after=");
        path.push_str(&after.to_string());
    }
    path
}

/// A connection error in a few words ("connection refused", "timed out") rather than
/// reqwest's nested chain.
fn describe(error: reqwest::Error) -> String {
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
