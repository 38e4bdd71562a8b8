//! The curator's commands: incidents, acknowledging and resolving them, silences.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use obs_model::{Matcher, Severity};

use super::values::{parse_duration, parse_matcher, parse_time};

#[derive(Debug, Args)]
pub struct IncidentsArgs {
    /// Which incidents to list; `active` is open and acknowledged.
    #[arg(long, value_enum, default_value_t = IncidentFilter::Active)]
    pub state: IncidentFilter,
    /// Only this service's.
    #[arg(long)]
    pub service: Option<String>,
    /// Only this severity.
    #[arg(long, value_enum)]
    pub severity: Option<SeverityFilter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IncidentFilter {
    Active,
    Open,
    Acknowledged,
    Resolved,
    All,
}

impl IncidentFilter {
    /// The curator's `state=` value; None asks for every incident (`active` is filtered by
    /// obsctl, the curator has no such state).
    pub fn query_value(self) -> Option<&'static str> {
        match self {
            IncidentFilter::Open => Some("open"),
            IncidentFilter::Acknowledged => Some("acknowledged"),
            IncidentFilter::Resolved => Some("resolved"),
            IncidentFilter::Active | IncidentFilter::All => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityFilter {
    Critical,
    Warning,
    Info,
}

impl From<SeverityFilter> for Severity {
    fn from(filter: SeverityFilter) -> Severity {
        match filter {
            SeverityFilter::Critical => Severity::Critical,
            SeverityFilter::Warning => Severity::Warning,
            SeverityFilter::Info => Severity::Info,
        }
    }
}

/// `ack` and `resolve`: which incident, who, and why.
#[derive(Debug, Args)]
pub struct ByHandArgs {
    /// The incident's id, or a prefix of it that only one incident has.
    pub id: String,
    /// Why, kept on the incident.
    #[arg(short, long)]
    pub comment: Option<String>,
    /// Who is acting [default: $USER, $LOGNAME or the login name].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Hold notifications back for incidents that match every matcher, for a while.
    Add(SilenceAddArgs),
    /// The silences that have not ended, soonest end first.
    #[command(visible_alias = "ls")]
    List,
    /// End a silence now.
    #[command(visible_aliases = ["rm", "expire"])]
    Delete {
        /// The silence's id, or a prefix of it that only one silence has.
        id: String,
    },
}

#[derive(Debug, Args)]
#[command(
    group = clap::ArgGroup::new("end").required(true).args(["duration", "until"]),
    after_help = "Matchers (amtool's syntax) test service, kind, subject, severity, source, \
                  fingerprint or an alert label: name=value, name!=value, name=~regex, \
                  name!~regex (regexes match the whole value).\n\
                  Example: obsctl silence add -m service=api -m 'kind=~oom.*' --for 2h -c 'deploying api'"
)]
pub struct SilenceAddArgs {
    /// A condition an incident must meet; repeat for more (all must hold).
    #[arg(short, long = "matcher", required = true, value_parser = parse_matcher, value_name = "MATCHER")]
    pub matchers: Vec<Matcher>,
    /// How long, from now: 90s, 15m, 2h, 1h30m, 3d, 1w.
    #[arg(long = "for", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// When it ends, as an RFC 3339 time (2026-03-04T18:00:00Z).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub until: Option<DateTime<Utc>>,
    /// Why (required: a silence nobody can explain is a silence nobody dares delete).
    #[arg(short, long)]
    pub comment: String,
    /// Who is asking [default: $USER, $LOGNAME or the login name].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}
