//! The command line, as clap sees it. Parsing only: what each command does lives in
//! [`crate::commands`] and [`crate::tui`].
//!
//! Every role's base URL comes from a flag or its `OBS_<ROLE>_URL` variable and defaults to the
//! local port of DESIGN §1, so `obsctl status` works next to `obs-stack` with no setup.
//! Each role's commands have their arguments in a module of their own ([`curator`],
//! [`planner`]); [`values`] parses what clap cannot check alone.

mod curator;
mod planner;
pub mod values;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Url;

pub use curator::{
    ByHandArgs, IncidentFilter, IncidentsArgs, SeverityFilter, SilenceAddArgs, SilenceCommand,
};
pub use planner::{PlanFilter, PlansArgs, ReportFormat};

#[derive(Debug, Parser)]
#[command(
    name = "obsctl",
    version,
    about = "Command-line client and live terminal view for the obs-fleet roles",
    after_help = "Exit codes: 0 done, 1 the request failed (a role unreachable, an error answer), 2 bad usage."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, before or after the command name.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The watcher's base URL.
    #[arg(
        long,
        global = true,
        env = "OBS_WATCHER_URL",
        default_value = "http://127.0.0.1:8001",
        value_parser = parse_base_url,
        value_name = "URL"
    )]
    pub watcher_url: Url,

    /// The curator's base URL (incidents, ack, resolve, silences).
    #[arg(
        long,
        global = true,
        env = "OBS_CURATOR_URL",
        default_value = "http://127.0.0.1:8002",
        value_parser = parse_base_url,
        value_name = "URL"
    )]
    pub curator_url: Url,

    /// The planner's base URL (plans).
    #[arg(
        long,
        global = true,
        env = "OBS_PLANNER_URL",
        default_value = "http://127.0.0.1:8003",
        value_parser = parse_base_url,
        value_name = "URL"
    )]
    pub planner_url: Url,

    /// The synthesizer's base URL (report).
    #[arg(
        long,
        global = true,
        env = "OBS_SYNTHESIZER_URL",
        default_value = "http://127.0.0.1:8004",
        value_parser = parse_base_url,
        value_name = "URL"
    )]
    pub synthesizer_url: Url,

    /// Bearer token for requests that change state (the roles' API_TOKEN).
    #[arg(
        long,
        global = true,
        env = "OBS_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,

    /// Colour in text output; `auto` colours a terminal unless NO_COLOR is set.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Give up on a request after this many seconds.
    #[arg(long, global = true, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fleet summary: services, containers, open issues.
    Status {
        /// Add the last events and the open issues with what to do about them.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Recent events, oldest first; `--follow` keeps printing new ones until Ctrl-C.
    Events(EventsArgs),
    /// Detected issues, worst first, each with a recommendation.
    Issues {
        /// Which issues to list.
        #[arg(long, value_enum, default_value_t = IssueFilter::Open)]
        state: IssueFilter,
    },
    /// A container's recent log lines, through the watcher.
    Logs {
        /// Container name.
        container: String,
        /// How many lines from the end (1 to 10000, the watcher's bound).
        #[arg(short = 'n', long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        lines: u32,
    },
    /// Tell the watcher a service is alive (for scripts and cron), or with --fail that it failed.
    Heartbeat(HeartbeatArgs),
    /// Report an event for a service (`failure`/`success` with --component feed task counters).
    Event(EventArgs),
    /// Incidents from the curator, worst first (default: the active ones).
    Incidents(IncidentsArgs),
    /// One incident in full: what, where, since when, facts, what to do.
    Incident {
        /// The incident's id, or a prefix of it that only one incident has.
        id: String,
    },
    /// Acknowledge an incident: someone is on it.
    #[command(visible_alias = "acknowledge")]
    Ack(ByHandArgs),
    /// Resolve an incident by hand; it reopens at the next report of the trouble from its
    /// source (a service still silent is reported again every heartbeat timeout).
    Resolve(ByHandArgs),
    /// Silences: hold notifications back for matching incidents (add, list, delete).
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Plans from the planner, most urgent first: what to do about each incident.
    Plans(PlansArgs),
    /// One plan in full, by its id or its incident's: the steps with reasons and outcomes.
    Plan {
        /// The plan's id or its incident's id.
        id: String,
    },
    /// The synthesizer's report, printed as it comes.
    Report {
        /// md on a terminal by default, json with --json.
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// Records a receiver refused, kept by the role that sent them: list them, or put them
    /// back in its outbox once the receiver takes them.
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
    /// A live view refreshed every few seconds; q or Esc quits.
    Tui {
        /// Seconds between refreshes.
        #[arg(long, default_value = "5", value_parser = parse_seconds, value_name = "SECONDS")]
        interval: Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List them, oldest first: every sending role's, or --role's.
    List {
        #[arg(long, value_enum)]
        role: Option<SendingRole>,
        /// Only those going to this destination (`planner`, `archivist`, `webhook-…`).
        #[arg(long)]
        destination: Option<String>,
        /// At most this many per role (1 to 1000).
        #[arg(short = 'n', long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Put them back in the role's outbox, to be delivered again: all of the role's, or only
    /// --destination's, or only the --seq listed.
    Replay {
        #[arg(long, value_enum)]
        role: SendingRole,
        #[arg(long)]
        destination: Option<String>,
        /// Their seq, from the listing (comma-separated or repeated).
        #[arg(long, value_delimiter = ',')]
        seq: Vec<i64>,
    },
}

/// The roles that send records onwards (and so may hold dead letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SendingRole {
    Watcher,
    Curator,
    Planner,
    Synthesizer,
}

impl SendingRole {
    pub const ALL: [SendingRole; 4] = [
        SendingRole::Watcher,
        SendingRole::Curator,
        SendingRole::Planner,
        SendingRole::Synthesizer,
    ];
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// How many events to show (with --follow: how many before the new ones).
    #[arg(short = 'n', long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    /// Only this service's events.
    #[arg(long)]
    pub service: Option<String>,
    /// Keep polling and print new events as they arrive (JSON: one event per line).
    #[arg(short, long)]
    pub follow: bool,
    /// Seconds between polls with --follow.
    #[arg(long, default_value = "2", value_parser = parse_seconds, value_name = "SECONDS", requires = "follow")]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct HeartbeatArgs {
    /// The service's name, as the watcher will list it.
    pub service: String,
    /// Where the service is (`backup`, `edge_loop`, …), shown next to it.
    #[arg(long)]
    pub phase: Option<String>,
    /// Call the service down if no beat follows within this many seconds.
    #[arg(long, value_parser = parse_positive_float, value_name = "SECONDS")]
    pub timeout_seconds: Option<f64>,
    /// Report an explicit failure instead of a beat (`job || obsctl heartbeat job --fail`).
    #[arg(long, conflicts_with = "phase")]
    pub fail: bool,
    /// With --fail: what failed, kept on the issue.
    #[arg(long, requires = "fail")]
    pub detail: Option<String>,
    /// Print nothing on success (errors still go to stderr), for cron.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct EventArgs {
    pub service: String,
    /// Free text: `failure`, `success`, `deploy`, …
    pub event_type: String,
    #[arg(long)]
    pub detail: Option<String>,
    #[arg(long)]
    pub component: Option<String>,
    /// Print nothing on success (errors still go to stderr).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IssueFilter {
    Open,
    Resolved,
    All,
}

impl IssueFilter {
    /// The watcher's `state=` query value; None asks for every issue.
    pub fn query_value(self) -> Option<&'static str> {
        match self {
            IssueFilter::Open => Some("open"),
            IssueFilter::Resolved => Some("resolved"),
            IssueFilter::All => None,
        }
    }
}

/// A role's base URL: http(s) with a host; a trailing path is kept as a prefix.
fn parse_base_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|error| format!("not a URL ({error})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be http:// or https://, not {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    // Joining paths onto the base must keep any prefix (`http://proxy/watcher/`).
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Seconds, fractions allowed, between 0.1 s and a day.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds = parse_positive_float(text)?;
    if !(0.1..=86_400.0).contains(&seconds) {
        return Err("must be between 0.1 and 86400 seconds".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_positive_float(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !value.is_finite() || value <= 0.0 {
        return Err("must be a positive number".into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn base_urls_keep_their_prefix_and_reject_nonsense() {
        assert_eq!(
            parse_base_url("http://127.0.0.1:8001").unwrap().as_str(),
            "http://127.0.0.1:8001/"
        );
        assert_eq!(
            parse_base_url("https://proxy/watcher").unwrap().as_str(),
            "https://proxy/watcher/"
        );
        assert!(parse_base_url("127.0.0.1:8001").is_err());
        assert!(parse_base_url("ftp://host").is_err());
        assert!(parse_base_url("http://host/?a=1").is_err());
    }

    #[test]
    fn seconds_accept_fractions_within_bounds() {
        assert_eq!(parse_seconds("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("1e9").is_err());
    }
}
