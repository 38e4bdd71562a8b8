//! The containers the watcher knows, with what detection needs beyond Docker's own view:
//! recent starts (restart loops), whether a stop was asked for (a stop is not a crash),
//! whether this run already counted an OOM kill.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bollard::models::{ContainerInspectResponse, HealthStatusEnum, RestartPolicyNameEnum};
use chrono::{DateTime, Utc};
use obs_model::Container;

use crate::store::ContainerCounts;

#[derive(Debug, Clone)]
pub struct Watched {
    pub info: Container,
    pub restart_policy: String,
    /// Recent `start` events, within RESTART_LOOP_WINDOW.
    pub starts: VecDeque<DateTime<Utc>>,
    /// A `kill` or `stop` was seen (or asked by us) since the last start: the exit that
    /// follows is intended, not a crash.
    pub stop_requested: bool,
    /// The signal that already reported an OOM kill in this run, if any.
    pub oom_reported: Option<&'static str>,
    /// An `oom` event arrived in this run.
    pub oom_event: bool,
    /// The watcher saw this container start at least once (later starts are restarts).
    pub seen_start: bool,
    /// A crash, OOM or restart-loop issue is open, so the stability sweep looks at it.
    pub troubled: bool,
    /// The last health check's output, for the unhealthy issue.
    pub health_output: Option<String>,
    pub failing_streak: Option<i64>,
    /// The exit (its `finished_at`) a seed found and judged already: its `die` event, replayed
    /// by the stream's overlap with the seed, is not judged twice.
    pub seeded_exit: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct ContainerTable {
    by_id: HashMap<String, Watched>,
    /// By container name, across re-creations: restarts and OOM kills counted so far.
    counts: BTreeMap<String, ContainerCounts>,
}

impl ContainerTable {
    pub fn get(&self, id: &str) -> Option<&Watched> {
        self.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Watched> {
        self.by_id.get_mut(id)
    }

    /// By name, or by id or an id prefix of at least 4 characters, as `docker` accepts.
    pub fn find(&self, name: &str) -> Option<&Watched> {
        let name = name.trim_start_matches('/');
        self.by_id
            .values()
            .find(|watched| watched.info.name == name)
            .or_else(|| {
                (name.len() >= 4)
                    .then(|| {
                        self.by_id
                            .values()
                            .find(|watched| watched.info.id.starts_with(name))
                    })
                    .flatten()
            })
    }

    pub fn find_mut(&mut self, name: &str) -> Option<&mut Watched> {
        let id = self.find(name)?.info.id.clone();
        self.by_id.get_mut(&id)
    }

    /// Insert or refresh from an inspect; keeps the watcher's own tracking.
    pub fn upsert(&mut self, inspect: &ContainerInspectResponse) -> Option<&mut Watched> {
        let (info, extra) = from_inspect(inspect)?;
        let id = info.id.clone();
        let watched = self.by_id.entry(id).or_insert_with(|| Watched {
            info: info.clone(),
            restart_policy: String::new(),
            starts: VecDeque::new(),
            stop_requested: false,
            oom_reported: None,
            oom_event: false,
            seen_start: false,
            troubled: false,
            health_output: None,
            failing_streak: None,
            seeded_exit: None,
        });
        let restart_count = info.restart_count;
        watched.info = info;
        watched.info.restart_count = restart_count;
        watched.restart_policy = extra.restart_policy;
        watched.health_output = extra.health_output;
        watched.failing_streak = extra.failing_streak;
        Some(watched)
    }

    pub fn remove(&mut self, id: &str) -> Option<Watched> {
        self.by_id.remove(id)
    }

    /// Replace the table with what the engine lists now (a fresh connection).
    pub fn retain_ids(&mut self, ids: &[String]) -> Vec<Watched> {
        let gone: Vec<String> = self
            .by_id
            .keys()
            .filter(|id| !ids.contains(id))
            .cloned()
            .collect();
        gone.iter().filter_map(|id| self.by_id.remove(id)).collect()
    }

    pub fn list(&self) -> Vec<Container> {
        let mut list: Vec<Container> = self
            .by_id
            .values()
            .map(|watched| watched.info.clone())
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    pub fn troubled(&self) -> Vec<&Watched> {
        self.by_id.values().filter(|w| w.troubled).collect()
    }

    pub fn count_restart(&mut self, name: &str) -> u64 {
        let counts = self.counts.entry(name.to_string()).or_default();
        counts.restarts += 1;
        counts.restarts
    }

    pub fn count_oom(&mut self, name: &str) -> u64 {
        let counts = self.counts.entry(name.to_string()).or_default();
        counts.oom_kills += 1;
        counts.oom_kills
    }

    pub fn counts(&self) -> &BTreeMap<String, ContainerCounts> {
        &self.counts
    }

    /// From the database: the last known containers (shown until the engine answers) and
    /// the counts.
    pub fn restore(
        &mut self,
        containers: Vec<Container>,
        counts: BTreeMap<String, ContainerCounts>,
    ) {
        for info in containers {
            self.by_id.insert(
                info.id.clone(),
                Watched {
                    info,
                    restart_policy: String::new(),
                    starts: VecDeque::new(),
                    stop_requested: false,
                    oom_reported: None,
                    oom_event: false,
                    seen_start: true,
                    troubled: true,
                    health_output: None,
                    failing_streak: None,
                    seeded_exit: None,
                },
            );
        }
        self.counts = counts;
    }
}

pub struct InspectExtra {
    pub restart_policy: String,
    pub health_output: Option<String>,
    pub failing_streak: Option<i64>,
}

/// The container as the API shows it, from `docker inspect`.
pub fn from_inspect(inspect: &ContainerInspectResponse) -> Option<(Container, InspectExtra)> {
    let id = inspect.id.clone()?;
    let name = inspect
        .name
        .as_deref()
        .unwrap_or(&id)
        .trim_start_matches('/')
        .to_string();
    let state = inspect.state.clone().unwrap_or_default();
    let health = state.health.clone();
    let last_check = health
        .as_ref()
        .and_then(|health| health.log.as_ref())
        .and_then(|log| log.last());
    let host_config = inspect.host_config.clone().unwrap_or_default();
    let restart_policy = host_config
        .restart_policy
        .as_ref()
        .and_then(|policy| policy.name)
        .map(|name| match name {
            RestartPolicyNameEnum::EMPTY => "no".to_string(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "no".into());
    let container = Container {
        id,
        name,
        image: inspect
            .config
            .as_ref()
            .and_then(|config| config.image.clone())
            .or_else(|| inspect.image.clone())
            .unwrap_or_default(),
        state: state
            .status
            .map(|status| status.to_string())
            .unwrap_or_else(|| "unknown".into()),
        health: health
            .as_ref()
            .and_then(|health| health.status)
            .and_then(|status| match status {
                HealthStatusEnum::EMPTY | HealthStatusEnum::NONE => None,
                other => Some(other.to_string()),
            }),
        restart_count: inspect.restart_count.unwrap_or(0).max(0) as u64,
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
        memory_limit_bytes: host_config
            .memory
            .filter(|limit| *limit > 0)
            .map(|limit| limit as u64),
        started_at: parse_time(state.started_at.as_deref()),
        finished_at: parse_time(state.finished_at.as_deref()),
    };
    Some((
        container,
        InspectExtra {
            restart_policy,
            health_output: last_check
                .and_then(|check| check.output.clone())
                .map(|output| {
                    let mut output = output.trim().to_string();
                    truncate_chars(&mut output, 500);
                    output
                }),
            failing_streak: health.and_then(|health| health.failing_streak),
        },
    ))
}

/// Docker writes `0001-01-01T00:00:00Z` for "never".
fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    let time = DateTime::parse_from_rfc3339(text?)
        .ok()?
        .with_timezone(&Utc);
    (time.timestamp() > 0).then_some(time)
}

pub fn truncate_chars(text: &mut String, max: usize) {
    if let Some((index, _)) = text.char_indices().nth(max) {
        text.truncate(index);
    }
}
