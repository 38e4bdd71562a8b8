//! NOTIFY_CONFIG: a routing tree in Alertmanager's own format, the parts that apply
//! (docs/synthesizer.md, "Routing").
//!
//! - `route:` with `receiver`, `matchers` (and the legacy `match` / `match_re`), `routes`,
//!   `continue`, `group_by`, `group_wait`, `group_interval`, `repeat_interval`. An incident
//!   goes where Alertmanager's tree would send an alert with the same labels: the first
//!   matching child, depth first, every further one after a child with `continue: true`, and
//!   the route itself when no child matches. The labels an incident offers are
//!   [`obs_model::Incident::label`]'s, the names silences match too.
//! - `receivers:` with `webhook_configs` (the generic JSON) and `slack_configs` (the Slack
//!   shape); any other kind of config (`email_configs`, `pagerduty_configs`, …) is read and
//!   named in a warning at start, and delivers nothing yet.
//!
//! Everything is checked when the file is read; a refusal is one line naming the file, the
//! route (`route.routes[2].routes[0]`) or receiver, and the field. Without NOTIFY_CONFIG,
//! NOTIFY_WEBHOOKS is one root route to one receiver holding every webhook.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use obs_model::matcher::{self, Compiled};
use obs_model::{Incident, IncidentChange, Matcher};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::config::{Webhook, WebhookKind};

/// Alertmanager's own default: remind every 4 h (read and shown; reminders are not sent yet).
const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 3600);
/// The longest group_wait / group_interval: a day; repeat_interval: a year.
const MAX_GROUP_TIMING: Duration = Duration::from_secs(24 * 3600);
const MAX_REPEAT: Duration = Duration::from_secs(366 * 24 * 3600);
/// Routes nested deeper than this are a mistake (and would recurse without end).
const MAX_DEPTH: usize = 32;

/// Receiver config kinds Alertmanager has that obs-fleet does not deliver yet.
const NOT_DELIVERED: [&str; 14] = [
    "email_configs",
    "pagerduty_configs",
    "opsgenie_configs",
    "victorops_configs",
    "pushover_configs",
    "wechat_configs",
    "telegram_configs",
    "sns_configs",
    "webex_configs",
    "discord_configs",
    "msteams_configs",
    "msteamsv2_configs",
    "jira_configs",
    "rocketchat_configs",
];

/// Slack's optional fields, sent beside `text` when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SlackFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon_emoji: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
}

impl SlackFields {
    pub fn is_empty(&self) -> bool {
        *self == SlackFields::default()
    }
}

/// One place messages go: a webhook and, for Slack, its optional fields. Each distinct one
/// has one outbox, however many receivers name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub webhook: Webhook,
    pub slack: SlackFields,
}

/// A receiver's channel and whether it hears of resolutions.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Index into [`Routing::channels`].
    pub channel: usize,
    pub send_resolved: bool,
}

impl Target {
    /// Whether a change of this kind reaches this target.
    pub fn wants(&self, change: IncidentChange) -> bool {
        self.send_resolved || change != IncidentChange::Resolved
    }
}

#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    pub targets: Vec<Target>,
    /// Config kinds read but not delivered (`email_configs`, …).
    pub not_delivered: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// These labels' values.
    Labels(Vec<String>),
    /// `['...']`: every label, so each distinct label set is its own group.
    All,
}

/// A route with everything inherited filled in.
#[derive(Debug, Clone)]
pub struct Route {
    /// `route`, `route.routes[0]`, …: its name in errors, the group keys and the API.
    pub path: String,
    /// Index into [`Routing::receivers`].
    pub receiver: usize,
    matchers: Vec<(Matcher, Compiled)>,
    pub continue_matching: bool,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub routes: Vec<Route>,
}

impl Route {
    fn matches(&self, incident: &Incident) -> bool {
        self.matchers.iter().all(|(_, m)| m.matches(incident))
    }

    /// Alertmanager's `Route.Match`: the routes an incident this route matches goes to.
    fn pick<'r>(&'r self, incident: &Incident, picked: &mut Vec<&'r Route>) -> bool {
        if !self.matches(incident) {
            return false;
        }
        let before = picked.len();
        for child in &self.routes {
            if child.pick(incident, picked) && !child.continue_matching {
                break;
            }
        }
        if picked.len() == before {
            picked.push(self);
        }
        true
    }

    /// The group an incident falls in on this route: its `group_by` labels and values.
    pub fn group_key(&self, incident: &Incident) -> String {
        let mut pairs: Vec<(&str, &str)> = match &self.group_by {
            GroupBy::All => incident.label_set(),
            GroupBy::Labels(names) => names
                .iter()
                .map(|name| (name.as_str(), incident.label(name)))
                .collect(),
        };
        pairs.sort_unstable();
        // JSON: unambiguous whatever the values hold.
        serde_json::to_string(&pairs).unwrap_or_default()
    }

    fn find(&self, path: &str) -> Option<&Route> {
        if self.path == path {
            return Some(self);
        }
        self.routes.iter().find_map(|child| child.find(path))
    }
}

/// The effective notification setup: from NOTIFY_CONFIG, or NOTIFY_WEBHOOKS as one route.
#[derive(Debug, Clone)]
pub struct Routing {
    /// NOTIFY_CONFIG's file, if the tree came from one.
    pub file: Option<PathBuf>,
    pub root: Route,
    pub receivers: Vec<Receiver>,
    pub channels: Vec<Channel>,
    /// Parts read but not applied, one line each, logged at start.
    pub warnings: Vec<String>,
}

impl Routing {
    /// NOTIFY_WEBHOOKS: every webhook hears of everything (resolutions too), grouped in one
    /// window of `group` as before routing existed.
    pub fn webhooks(webhooks: &[Webhook], group: Duration) -> Routing {
        let channels: Vec<Channel> = webhooks
            .iter()
            .map(|webhook| Channel {
                webhook: webhook.clone(),
                slack: SlackFields::default(),
            })
            .collect();
        Routing {
            file: None,
            root: Route {
                path: "route".into(),
                receiver: 0,
                matchers: Vec::new(),
                continue_matching: false,
                group_by: GroupBy::Labels(Vec::new()),
                group_wait: group,
                group_interval: group,
                repeat_interval: DEFAULT_REPEAT,
                routes: Vec::new(),
            },
            receivers: vec![Receiver {
                name: "NOTIFY_WEBHOOKS".into(),
                targets: (0..channels.len())
                    .map(|channel| Target {
                        channel,
                        send_resolved: true,
                    })
                    .collect(),
                not_delivered: Vec::new(),
            }],
            channels,
            warnings: Vec::new(),
        }
    }

    /// Read and check NOTIFY_CONFIG's file. `group` is the timing a route gets when neither
    /// it nor a parent sets one (NOTIFY_GROUP_SECONDS). The error is one line: the file, the
    /// route or receiver, the field and why.
    pub fn load(path: &Path, group: Duration) -> Result<Routing, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{shown}: cannot be read: {error}"))?;
        parse(&text, group)
            .map(|mut routing| {
                routing.file = Some(path.to_path_buf());
                routing
            })
            .map_err(|why| format!("{shown}: {why}"))
    }

    /// Whether anything can be delivered at all.
    pub fn delivers(&self) -> bool {
        self.receivers.iter().any(|r| !r.targets.is_empty())
    }

    /// The routes an incident goes to, in Alertmanager's order.
    pub fn pick(&self, incident: &Incident) -> Vec<&Route> {
        let mut picked = Vec::new();
        self.root.pick(incident, &mut picked);
        picked
    }

    /// The receivers' names an incident goes to, as `amtool config routes test` lists them.
    pub fn receivers_for(&self, incident: &Incident) -> Vec<&str> {
        self.pick(incident)
            .into_iter()
            .map(|route| self.receivers[route.receiver].name.as_str())
            .collect()
    }

    /// A route by its path (the group keys name routes so), if this tree has it.
    pub fn route(&self, path: &str) -> Option<&Route> {
        self.root.find(path)
    }

    /// The tree as `GET /v1/notify/config` shows it: secrets redacted.
    pub fn view(&self) -> serde_json::Value {
        let source = if self.file.is_some() {
            "NOTIFY_CONFIG"
        } else {
            "NOTIFY_WEBHOOKS"
        };
        serde_json::json!({
            "source": source,
            "file": self.file.as_ref().map(|f| f.display().to_string()),
            "route": route_view(&self.root, self),
            "receivers": self.receivers.iter().map(|r| receiver_view(r, self)).collect::<Vec<_>>(),
            "warnings": self.warnings,
        })
    }
}

fn route_view(route: &Route, routing: &Routing) -> serde_json::Value {
    serde_json::json!({
        "path": route.path,
        "receiver": routing.receivers[route.receiver].name,
        "matchers": route.matchers.iter().map(|(m, _)| matcher::text(m)).collect::<Vec<_>>(),
        "continue": route.continue_matching,
        "group_by": match &route.group_by {
            GroupBy::All => vec!["...".to_string()],
            GroupBy::Labels(names) => names.clone(),
        },
        "group_wait_seconds": route.group_wait.as_secs_f64(),
        "group_interval_seconds": route.group_interval.as_secs_f64(),
        "repeat_interval_seconds": route.repeat_interval.as_secs_f64(),
        "routes": route.routes.iter().map(|r| route_view(r, routing)).collect::<Vec<_>>(),
    })
}

fn receiver_view(receiver: &Receiver, routing: &Routing) -> serde_json::Value {
    let mut webhooks = Vec::new();
    let mut slacks = Vec::new();
    for target in &receiver.targets {
        let channel = &routing.channels[target.channel];
        match channel.webhook.kind {
            WebhookKind::Generic => webhooks.push(serde_json::json!({
                "url": obs_core::redact::url(&channel.webhook.url),
                "send_resolved": target.send_resolved,
            })),
            // A Slack webhook's path is its secret: none of it is shown.
            WebhookKind::Slack => {
                let mut view = serde_json::json!({
                    "api_url": "<secret>",
                    "send_resolved": target.send_resolved,
                });
                if let (Some(object), Ok(serde_json::Value::Object(fields))) =
                    (view.as_object_mut(), serde_json::to_value(&channel.slack))
                {
                    object.extend(fields);
                }
                slacks.push(view);
            }
        }
    }
    serde_json::json!({
        "name": receiver.name,
        "webhook_configs": webhooks,
        "slack_configs": slacks,
        "not_delivered": receiver.not_delivered,
    })
}

// --- The file, as written ---------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    route: Option<RawRoute>,
    #[serde(default)]
    receivers: Vec<RawReceiver>,
    #[serde(default)]
    global: Option<RawGlobal>,
    // Alertmanager's other sections: read, not applied yet (a warning each).
    templates: Option<IgnoredAny>,
    inhibit_rules: Option<IgnoredAny>,
    time_intervals: Option<IgnoredAny>,
    mute_time_intervals: Option<IgnoredAny>,
}

/// Of `global:`, only what a receiver here can inherit; the rest is Alertmanager's alone.
#[derive(Deserialize)]
struct RawGlobal {
    slack_api_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    receiver: Option<String>,
    group_by: Option<Vec<String>>,
    #[serde(rename = "continue", default)]
    continue_matching: bool,
    #[serde(default)]
    matchers: Vec<String>,
    #[serde(rename = "match", default)]
    match_equal: BTreeMap<String, String>,
    #[serde(default)]
    match_re: BTreeMap<String, String>,
    group_wait: Option<String>,
    group_interval: Option<String>,
    repeat_interval: Option<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    mute_time_intervals: Option<IgnoredAny>,
    active_time_intervals: Option<IgnoredAny>,
}

/// Not `deny_unknown_fields` (serde cannot with `flatten`): `others` takes every other key,
/// and each is checked.
#[derive(Deserialize)]
struct RawReceiver {
    name: String,
    #[serde(default)]
    webhook_configs: Vec<RawWebhook>,
    #[serde(default)]
    slack_configs: Vec<RawSlack>,
    #[serde(flatten)]
    others: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Option<String>,
    url_file: Option<String>,
    send_resolved: Option<bool>,
    http_config: Option<IgnoredAny>,
    max_alerts: Option<IgnoredAny>,
    timeout: Option<IgnoredAny>,
}

/// Slack's templated fields (title, text, color, …) are Alertmanager's Go templates; the
/// message here is obs-fleet's own, so they are read and not used.
#[derive(Deserialize)]
struct RawSlack {
    api_url: Option<String>,
    api_url_file: Option<String>,
    channel: Option<String>,
    username: Option<String>,
    icon_emoji: Option<String>,
    icon_url: Option<String>,
    send_resolved: Option<bool>,
}

/// Parse and check a NOTIFY_CONFIG document.
pub fn parse(text: &str, group: Duration) -> Result<Routing, String> {
    if text.trim().is_empty() {
        return Err("is empty; it needs `route:` and `receivers:`".into());
    }
    let deserializer = serde_norway::Deserializer::from_str(text);
    let file: RawFile = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let why = one_line(&error.into_inner().to_string());
        if path == "." {
            return why;
        }
        // serde_norway names the path (or its parent) itself in some messages; say it once.
        let why = match why.split_once(": ") {
            Some((named, rest)) if path.starts_with(named) => rest,
            _ => &why,
        };
        format!("{path}: {why}")
    })?;
    let mut warnings = Vec::new();
    for (present, section) in [
        (file.templates.is_some(), "templates"),
        (file.inhibit_rules.is_some(), "inhibit_rules"),
        (file.time_intervals.is_some(), "time_intervals"),
        (file.mute_time_intervals.is_some(), "mute_time_intervals"),
    ] {
        if present {
            warnings.push(format!("{section}: read but not applied yet"));
        }
    }
    let slack_default = file.global.and_then(|g| g.slack_api_url);
    let mut channels: Vec<Channel> = Vec::new();
    let mut receivers: Vec<Receiver> = Vec::new();
    for (index, raw) in file.receivers.into_iter().enumerate() {
        let at = format!("receivers[{index}]");
        let receiver = receiver(raw, &at, slack_default.as_deref(), &mut channels)?;
        if receivers.iter().any(|r| r.name == receiver.name) {
            return Err(format!(
                "{at}.name: '{}' is the name of an earlier receiver too",
                receiver.name
            ));
        }
        for kind in &receiver.not_delivered {
            warnings.push(format!(
                "{at}.{kind} (receiver '{}'): not delivered yet; only webhook_configs and \
                 slack_configs are",
                receiver.name
            ));
        }
        receivers.push(receiver);
    }
    let Some(raw_root) = file.route else {
        return Err("route: missing; the file needs a root route with a receiver".into());
    };
    if raw_root.receiver.is_none() {
        return Err("route.receiver: the root route needs a receiver".into());
    }
    if !raw_root.matchers.is_empty()
        || !raw_root.match_equal.is_empty()
        || !raw_root.match_re.is_empty()
    {
        return Err("route.matchers: the root route must not have matchers".into());
    }
    if raw_root.continue_matching {
        return Err("route.continue: the root route cannot have continue".into());
    }
    let defaults = Inherited {
        receiver: 0,
        group_by: GroupBy::Labels(Vec::new()),
        group_wait: group,
        group_interval: group,
        repeat_interval: DEFAULT_REPEAT,
    };
    let root = route(
        raw_root,
        "route".into(),
        &defaults,
        &receivers,
        &mut warnings,
        0,
    )?;
    Ok(Routing {
        file: None,
        root,
        receivers,
        channels,
        warnings,
    })
}

/// What a child takes from its parent unless it sets it.
struct Inherited {
    receiver: usize,
    group_by: GroupBy,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
}

fn route(
    raw: RawRoute,
    path: String,
    parent: &Inherited,
    receivers: &[Receiver],
    warnings: &mut Vec<String>,
    depth: usize,
) -> Result<Route, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "{path}: routes are nested more than {MAX_DEPTH} deep"
        ));
    }
    let receiver = match &raw.receiver {
        None => parent.receiver,
        Some(name) => receivers
            .iter()
            .position(|r| &r.name == name)
            .ok_or_else(|| format!("{path}.receiver: '{name}' is not a receiver's name"))?,
    };
    let mut matchers = Vec::new();
    for (index, text) in raw.matchers.iter().enumerate() {
        let field = format!("{path}.matchers[{index}]");
        for parsed in matcher::parse_list(text).map_err(|why| format!("{field}: {why}"))? {
            matchers.push(compile(parsed, &field)?);
        }
    }
    for (name, value) in &raw.match_equal {
        let field = format!("{path}.match.{name}");
        matchers.push(compile(
            Matcher {
                name: name.clone(),
                value: value.clone(),
                is_regex: false,
                is_equal: true,
            },
            &field,
        )?);
    }
    for (name, value) in &raw.match_re {
        let field = format!("{path}.match_re.{name}");
        matchers.push(compile(
            Matcher {
                name: name.clone(),
                value: value.clone(),
                is_regex: true,
                is_equal: true,
            },
            &field,
        )?);
    }
    let group_by = match raw.group_by {
        None => parent.group_by.clone(),
        Some(names) if names.iter().any(|n| n == "...") => {
            if names.len() > 1 {
                return Err(format!(
                    "{path}.group_by: '...' groups by every label and must be alone"
                ));
            }
            GroupBy::All
        }
        Some(names) => {
            for (index, name) in names.iter().enumerate() {
                label_name(name).map_err(|why| format!("{path}.group_by[{index}]: {why}"))?;
                if names[..index].contains(name) {
                    return Err(format!(
                        "{path}.group_by[{index}]: '{name}' is listed twice"
                    ));
                }
            }
            GroupBy::Labels(names)
        }
    };
    let timing = |field: &str, text: &Option<String>, inherited: Duration, max: Duration| match text
    {
        None => Ok(inherited),
        Some(text) => duration(text, max).map_err(|why| format!("{path}.{field}: {why}")),
    };
    let group_wait = timing(
        "group_wait",
        &raw.group_wait,
        parent.group_wait,
        MAX_GROUP_TIMING,
    )?;
    let group_interval = timing(
        "group_interval",
        &raw.group_interval,
        parent.group_interval,
        MAX_GROUP_TIMING,
    )?;
    if group_interval.is_zero() {
        return Err(format!("{path}.group_interval: must not be zero"));
    }
    let repeat_interval = timing(
        "repeat_interval",
        &raw.repeat_interval,
        parent.repeat_interval,
        MAX_REPEAT,
    )?;
    if repeat_interval.is_zero() {
        return Err(format!("{path}.repeat_interval: must not be zero"));
    }
    for (present, field) in [
        (raw.mute_time_intervals.is_some(), "mute_time_intervals"),
        (raw.active_time_intervals.is_some(), "active_time_intervals"),
    ] {
        if present {
            warnings.push(format!("{path}.{field}: read but not applied yet"));
        }
    }
    let inherited = Inherited {
        receiver,
        group_by: group_by.clone(),
        group_wait,
        group_interval,
        repeat_interval,
    };
    let routes = raw
        .routes
        .into_iter()
        .enumerate()
        .map(|(index, child)| {
            route(
                child,
                format!("{path}.routes[{index}]"),
                &inherited,
                receivers,
                warnings,
                depth + 1,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Route {
        path,
        receiver,
        matchers,
        continue_matching: raw.continue_matching,
        group_by,
        group_wait,
        group_interval,
        repeat_interval,
        routes,
    })
}

fn compile(matcher: Matcher, field: &str) -> Result<(Matcher, Compiled), String> {
    label_name(&matcher.name).map_err(|why| format!("{field}: {why}"))?;
    let compiled = Compiled::new(&matcher).map_err(|why| format!("{field}: {why}"))?;
    Ok((matcher, compiled))
}

/// Prometheus's label names: letters, digits and `_`, not starting with a digit.
fn label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a label name (letters, digits and _, not starting with a digit)"
        ))
    }
}

fn receiver(
    raw: RawReceiver,
    at: &str,
    slack_default: Option<&str>,
    channels: &mut Vec<Channel>,
) -> Result<Receiver, String> {
    label_text(&raw.name).map_err(|why| format!("{at}.name: {why}"))?;
    let mut targets = Vec::new();
    for (index, hook) in raw.webhook_configs.into_iter().enumerate() {
        let field = format!("{at}.webhook_configs[{index}]");
        if hook.url_file.is_some() {
            return Err(format!(
                "{field}.url_file: not read here; give the url itself"
            ));
        }
        let Some(url) = hook.url else {
            return Err(format!("{field}.url: missing"));
        };
        // http_config, max_alerts and timeout are Alertmanager's; the outbox has its own.
        let _ = (hook.http_config, hook.max_alerts, hook.timeout);
        let channel = Channel {
            webhook: webhook(&url, WebhookKind::Generic)
                .map_err(|why| format!("{field}.url: {why}"))?,
            slack: SlackFields::default(),
        };
        targets.push(Target {
            channel: intern(channels, channel),
            send_resolved: hook.send_resolved.unwrap_or(true),
        });
    }
    for (index, slack) in raw.slack_configs.into_iter().enumerate() {
        let field = format!("{at}.slack_configs[{index}]");
        if slack.api_url_file.is_some() {
            return Err(format!(
                "{field}.api_url_file: not read here; give the api_url itself"
            ));
        }
        let Some(url) = slack.api_url.as_deref().or(slack_default) else {
            return Err(format!(
                "{field}.api_url: missing (and no global.slack_api_url)"
            ));
        };
        let channel = Channel {
            webhook: webhook(url, WebhookKind::Slack)
                .map_err(|why| format!("{field}.api_url: {why}"))?,
            slack: SlackFields {
                channel: slack.channel,
                username: slack.username,
                icon_emoji: slack.icon_emoji,
                icon_url: slack.icon_url,
            },
        };
        targets.push(Target {
            channel: intern(channels, channel),
            // Alertmanager's default for Slack: only firing.
            send_resolved: slack.send_resolved.unwrap_or(false),
        });
    }
    let mut not_delivered = Vec::new();
    for key in raw.others.keys() {
        if NOT_DELIVERED.contains(&key.as_str()) {
            not_delivered.push(key.clone());
        } else {
            return Err(format!("{at}.{key}: not a receiver field"));
        }
    }
    Ok(Receiver {
        name: raw.name,
        targets,
        not_delivered,
    })
}

/// The index of `channel` in `channels`, added if new: one outbox per distinct channel.
fn intern(channels: &mut Vec<Channel>, channel: Channel) -> usize {
    match channels.iter().position(|known| *known == channel) {
        Some(at) => at,
        None => {
            channels.push(channel);
            channels.len() - 1
        }
    }
}

fn webhook(url: &str, kind: WebhookKind) -> Result<Webhook, String> {
    let valid = reqwest::Url::parse(url).ok().is_some_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    if !valid {
        return Err(format!(
            "'{}' is not an http(s) URL",
            obs_core::redact::origin(url)
        ));
    }
    Ok(Webhook {
        kind,
        url: url.to_string(),
    })
}

fn label_text(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err("must be at most 256 characters, without control characters".into());
    }
    Ok(())
}

/// Prometheus's durations: `30s`, `5m`, `1h30m`, `500ms`, `2d`, `1w`, `1y`, or `0`; units
/// from the largest down, each at most once.
pub fn duration(text: &str, max: Duration) -> Result<Duration, String> {
    const UNITS: [(&str, f64); 7] = [
        ("y", 365.0 * 86_400.0),
        ("w", 7.0 * 86_400.0),
        ("d", 86_400.0),
        ("h", 3600.0),
        ("m", 60.0),
        ("s", 1.0),
        ("ms", 0.001),
    ];
    let bad = || format!("'{text}' is not a duration like 30s, 5m, 1h30m or 500ms");
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut seconds = 0.0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 12 {
            return Err(bad());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // "ms" before "m": the longer unit wins where both fit.
        let mut found: Option<(usize, &str, f64)> = None;
        for (index, &(unit, factor)) in UNITS.iter().enumerate().skip(next_unit) {
            if rest.starts_with(unit) && found.is_none_or(|(_, known, _)| unit.len() > known.len())
            {
                found = Some((index, unit, factor));
            }
        }
        let Some((index, unit, factor)) = found else {
            return Err(bad());
        };
        seconds += number * factor;
        rest = &rest[unit.len()..];
        next_unit = index + 1;
    }
    if text.is_empty() {
        return Err(bad());
    }
    let value = Duration::from_secs_f64(seconds);
    if value > max {
        return Err(format!(
            "'{text}' is longer than the most allowed, {}s",
            max.as_secs()
        ));
    }
    Ok(value)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
