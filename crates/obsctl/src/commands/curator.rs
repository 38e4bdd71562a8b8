//! The curator's commands: incidents, acknowledging and resolving them, silences.

use chrono::Utc;
use obs_model::SilenceIn;

use super::{ids, Context};
use crate::cli::{ByHandArgs, IncidentFilter, IncidentsArgs, SilenceAddArgs, SilenceCommand};
use crate::client::curator::ByHand;
use crate::output;
use crate::render::incidents as render;

pub async fn incidents(context: &Context, args: &IncidentsArgs) -> anyhow::Result<()> {
    let incidents = context
        .curator
        .incidents(
            args.state,
            args.service.as_deref(),
            args.severity.map(Into::into),
        )
        .await?;
    if context.json {
        return output::json(&incidents);
    }
    if incidents.is_empty() {
        let which = match args.state {
            IncidentFilter::All => String::new(),
            state => format!("{} ", state_name(state)),
        };
        return output::text(&format!("no {which}incidents\n"));
    }
    output::text(&render::incidents(&incidents, &context.painter, Utc::now()))
}

fn state_name(state: IncidentFilter) -> &'static str {
    match state {
        IncidentFilter::Active => "active",
        IncidentFilter::Open => "open",
        IncidentFilter::Acknowledged => "acknowledged",
        IncidentFilter::Resolved => "resolved",
        IncidentFilter::All => "",
    }
}

/// The whole incident id for what was typed (see [`ids::complete`]).
async fn incident_id(context: &Context, typed: &str) -> anyhow::Result<String> {
    if !ids::is_partial(typed) {
        return Ok(typed.to_string());
    }
    let known = context
        .curator
        .incidents(IncidentFilter::All, None, None)
        .await?;
    ids::complete(typed, "incident", known.iter().map(|incident| incident.id))
}

pub async fn incident(context: &Context, typed: &str) -> anyhow::Result<()> {
    let id = incident_id(context, typed).await?;
    let incident = context.curator.incident(&id).await?;
    if context.json {
        return output::json(&incident);
    }
    output::text(&render::incident(&incident, &context.painter, Utc::now()))
}

/// `ack` (`resolve: false`) or `resolve`.
pub async fn by_hand(context: &Context, args: &ByHandArgs, resolve: bool) -> anyhow::Result<()> {
    let id = incident_id(context, &args.id).await?;
    let body = ByHand {
        by: args.by.clone().or_else(user),
        comment: args.comment.clone(),
    };
    let incident = if resolve {
        context.curator.resolve(&id, &body).await?
    } else {
        context.curator.acknowledge(&id, &body).await?
    };
    if context.json {
        return output::json(&incident);
    }
    output::text(&render::incident_changed(&incident, &context.painter))
}

/// Who runs obsctl, for `--by` when it is not given: $USER, $LOGNAME, or else the login
/// name of the user obsctl runs as (a container or cron job often sets neither variable).
fn user() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|name| !name.trim().is_empty())
        .or_else(login_name)
}

/// The name /etc/passwd gives the real user id, if it has one.
fn login_name() -> Option<String> {
    // SAFETY: getuid(2) takes nothing, touches no memory and cannot fail.
    let uid = unsafe { libc::getuid() }.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid && !name.is_empty()).then(|| name.to_string())
    })
}

pub async fn silence(context: &Context, command: &SilenceCommand) -> anyhow::Result<()> {
    match command {
        SilenceCommand::Add(args) => add_silence(context, args).await,
        SilenceCommand::List => {
            let silences = context.curator.silences().await?;
            if context.json {
                return output::json(&silences);
            }
            if silences.is_empty() {
                return output::text("no silences\n");
            }
            output::text(&render::silences(&silences, &context.painter, Utc::now()))
        }
        SilenceCommand::Delete { id } => {
            let id = if ids::is_partial(id) {
                let known = context.curator.silences().await?;
                ids::complete(id, "silence", known.iter().map(|silence| silence.id))?
            } else {
                id.clone()
            };
            let removed = context.curator.delete_silence(&id).await?;
            if context.json {
                return output::json(&removed);
            }
            output::text(&render::silence_changed("deleted", &removed, Utc::now()))
        }
    }
}

async fn add_silence(context: &Context, args: &SilenceAddArgs) -> anyhow::Result<()> {
    let now = Utc::now();
    let ends_at = match (args.duration, args.until) {
        (_, Some(until)) => until,
        (Some(duration), None) => {
            // parse_duration bounds it far below what chrono can hold.
            now + chrono::Duration::from_std(duration)?
        }
        (None, None) => anyhow::bail!("say how long: --for or --until"),
    };
    let silence = context
        .curator
        .add_silence(&SilenceIn {
            matchers: args.matchers.clone(),
            starts_at: None,
            ends_at,
            comment: args.comment.clone(),
            created_by: args.by.clone().or_else(user),
        })
        .await?;
    if context.json {
        return output::json(&silence);
    }
    output::text(&render::silence_changed("added", &silence, Utc::now()))
}
