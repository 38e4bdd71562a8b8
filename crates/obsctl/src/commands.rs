//! What each command does: ask the role, then print text for people or JSON for scripts.
//! The watcher's commands are here; the other roles' in [`curator`] and [`planner`].

pub mod curator;
pub mod dead_letters;
mod ids;
pub mod planner;

use std::collections::HashSet;

use chrono::Utc;
use obs_model::{EventIn, HeartbeatIn};
use serde::Serialize;
use ulid::Ulid;

use crate::cli::{EventArgs, EventsArgs, HeartbeatArgs, IssueFilter};
use crate::client::{CuratorClient, PlannerClient, SynthesizerClient, WatcherClient};
use crate::output;
use crate::render::{self, Painter, StatusView};

/// How many events `status --verbose` shows (the original showed the last 5; a few more
/// fits a terminal and gives context).
const VERBOSE_EVENTS: u32 = 10;

/// What every command needs: the clients and how to print.
pub struct Context {
    pub watcher: WatcherClient,
    pub curator: CuratorClient,
    pub planner: PlannerClient,
    pub synthesizer: SynthesizerClient,
    pub json: bool,
    pub painter: Painter,
}

/// `status --verbose --json` is the plain status with the two lists added, so `.services`
/// means the same with or without `--verbose`.
#[derive(Serialize)]
struct VerboseStatus<'a> {
    #[serde(flatten)]
    status: &'a obs_model::WatcherStatus,
    recent_events: &'a [obs_model::Event],
    issues: &'a [obs_model::Issue],
}

pub async fn status(context: &Context, verbose: bool) -> anyhow::Result<()> {
    let watcher = &context.watcher;
    if !verbose {
        // JSON is for scripts: every service, the pages followed; text shows the first page.
        return if context.json {
            output::json(&watcher.status_all().await?)
        } else {
            let status = watcher.status().await?;
            output::text(&render::status(
                &StatusView {
                    watcher_url: watcher.base_url(),
                    status: &status,
                    recent: None,
                },
                &context.painter,
                Utc::now(),
            ))
        };
    }
    let status = async {
        if context.json {
            watcher.status_all().await
        } else {
            watcher.status().await
        }
    };
    let (status, events, issues) = tokio::try_join!(
        status,
        watcher.events(VERBOSE_EVENTS, None),
        watcher.issues(IssueFilter::Open),
    )?;
    if context.json {
        return output::json(&VerboseStatus {
            status: &status,
            recent_events: &events,
            issues: &issues,
        });
    }
    output::text(&render::status(
        &StatusView {
            watcher_url: watcher.base_url(),
            status: &status,
            recent: Some((&events, &issues)),
        },
        &context.painter,
        Utc::now(),
    ))
}

pub async fn events(context: &Context, args: &EventsArgs) -> anyhow::Result<()> {
    if args.follow {
        return follow(context, args).await;
    }
    let events = context
        .watcher
        .events(args.limit, args.service.as_deref())
        .await?;
    if context.json {
        output::json(&events)
    } else {
        output::text(&render::events(&events, &context.painter, Utc::now()))
    }
}

/// Print the latest `--limit` events and then, every interval, the events not printed yet,
/// until Ctrl-C.
///
/// Each poll asks for a window of the latest events; an event absent from the previous window
/// and present in this one is new. An event that dropped out of the window can never come
/// back, so remembering one window of ids is enough. The first window is fetched whole too
/// (and only its tail printed), so the older events in it are known as seen, not taken for
/// new ones at the first poll. When a whole window is new, more events may have arrived than
/// a window holds: that gap is said on stderr.
async fn follow(context: &Context, args: &EventsArgs) -> anyhow::Result<()> {
    let window = args.limit.max(200);
    let first = context
        .watcher
        .events(window, args.service.as_deref())
        .await?;
    // Oldest first: the latest `limit` are the tail.
    let latest = &first[first.len().saturating_sub(args.limit as usize)..];
    let print = |events: &[obs_model::Event]| -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if context.json {
            output::json_lines(events)
        } else {
            // New events come one poll at a time: a fixed service column keeps them aligned.
            output::text(&render::events_aligned(
                events,
                &context.painter,
                Utc::now(),
                render::EVENT_SERVICE_WIDTH,
            ))
        }
    };
    print(latest)?;
    // One Ctrl-C listener for the whole run: a signal that arrives mid-request still ends it.
    tokio::select! {
        result = poll_new_events(context, args, window, first, print) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn poll_new_events(
    context: &Context,
    args: &EventsArgs,
    window: u32,
    first: Vec<obs_model::Event>,
    print: impl Fn(&[obs_model::Event]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut seen: HashSet<Ulid> = first.iter().map(|event| event.id).collect();
    let mut unreachable = false;
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let latest = match context
            .watcher
            .events(window, args.service.as_deref())
            .await
        {
            Ok(latest) => latest,
            Err(error) => {
                // A watcher restarting is normal while following: say so once, keep polling.
                if !unreachable {
                    output::note(&format!(
                        "{error}; retrying every {}s",
                        args.interval.as_secs_f64()
                    ));
                    unreachable = true;
                }
                continue;
            }
        };
        if unreachable {
            output::note("watcher reachable again");
            unreachable = false;
        }
        let fresh: Vec<obs_model::Event> = latest
            .iter()
            .filter(|event| !seen.contains(&event.id))
            .cloned()
            .collect();
        if !seen.is_empty() && fresh.len() == latest.len() && latest.len() as u32 >= window {
            output::note("more events arrived than one poll holds; some were skipped");
        }
        print(&fresh)?;
        seen = latest.iter().map(|event| event.id).collect();
    }
}

pub async fn issues(context: &Context, filter: IssueFilter) -> anyhow::Result<()> {
    let issues = context.watcher.issues(filter).await?;
    if context.json {
        output::json(&issues)
    } else {
        output::text(&render::issues(&issues, &context.painter, Utc::now()))
    }
}

pub async fn logs(context: &Context, container: &str, lines: u32) -> anyhow::Result<()> {
    let logs = context.watcher.logs(container, lines).await?;
    if context.json {
        return output::json(&logs);
    }
    let mut text = logs.lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    output::text(&text)
}

pub async fn heartbeat(context: &Context, args: &HeartbeatArgs) -> anyhow::Result<()> {
    let watcher = &context.watcher;
    let answer = if args.fail {
        watcher
            .fail(&args.service, args.detail.as_deref(), args.timeout_seconds)
            .await?
    } else {
        watcher
            .heartbeat(&HeartbeatIn {
                service: args.service.clone(),
                phase: args.phase.clone(),
                timeout_seconds: args.timeout_seconds,
            })
            .await?
    };
    if context.json {
        return output::json(&answer);
    }
    if args.quiet {
        return Ok(());
    }
    let what = if args.fail { "failure" } else { "heartbeat" };
    output::text(&format!("{what} sent for {}\n", args.service))
}

pub async fn event(context: &Context, args: &EventArgs) -> anyhow::Result<()> {
    let answer = context
        .watcher
        .post_event(&EventIn {
            service: args.service.clone(),
            event_type: args.event_type.clone(),
            detail: args.detail.clone(),
            component: args.component.clone(),
        })
        .await?;
    if context.json {
        return output::json(&answer);
    }
    if args.quiet {
        return Ok(());
    }
    output::text(&format!(
        "event {} recorded for {}\n",
        args.event_type, args.service
    ))
}
