//! Notifications: incident changes people should hear of, routed ([`route`]: NOTIFY_CONFIG's
//! tree, or NOTIFY_WEBHOOKS as one route), grouped per route, one message per webhook per
//! group, each webhook behind its own `obs_core::Outbox` (rows of the role's
//! database, retried with backoff while the receiver is down, delivered by any replica),
//! posting one JSON object per request and never the fleet's API token. A group's message
//! is staged in the same transaction that records which (webhook, incident, revision) it
//! carries ([`crate::store::Store::flush`]), so it goes out once or not at all.
//!
//! Message shapes (docs/synthesizer.md): Slack-compatible `{"text": "…"}` in Slack's mrkdwn,
//! or the generic JSON with every change, its incident and its plan. A message's `id` is
//! derived from what it carries, so a receiver can recognise a copy.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use obs_core::db::{Db, Tx};
use obs_core::{Outbox, OutboxOptions, RoleContext, Service};
use obs_model::{IncidentChange, Severity};
use serde_json::{json, Value};

use crate::config::{Webhook, WebhookKind};
use crate::plans::Notice;

pub mod route;

use route::{Channel, Routing};

/// One webhook (a channel of the routing) and its outbox.
#[derive(Clone)]
pub struct Hook {
    channel: Channel,
    destination: String,
    outbox: Outbox,
}

impl Hook {
    pub fn kind(&self) -> WebhookKind {
        self.channel.webhook.kind
    }

    /// The webhook's outbox name, also its key in `synthesizer_notified`.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Stage one message about `notices` in this webhook's outbox, inside `tx`.
    pub fn stage(
        &self,
        tx: &mut Tx<'_>,
        notices: &[Notice],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let message = match self.kind() {
            WebhookKind::Slack => {
                let mut message = slack_message(notices);
                if let (Some(object), Ok(Value::Object(fields))) = (
                    message.as_object_mut(),
                    serde_json::to_value(&self.channel.slack),
                ) {
                    object.extend(fields);
                }
                message
            }
            WebhookKind::Generic => generic_message(notices, now),
        };
        self.outbox
            .stage(tx, &[message])
            .with_context(|| format!("queueing a notification for {}", self.destination))
    }
}

/// The routing and one outbox per channel (`hooks()[i]` is `routing().channels[i]`'s). Cheap
/// to clone.
#[derive(Clone)]
pub struct Notifier {
    hooks: std::sync::Arc<[Hook]>,
    routing: std::sync::Arc<Routing>,
}

impl Notifier {
    pub fn open(db: &Db, service: &Service, routing: Routing) -> anyhow::Result<Notifier> {
        let hooks = routing
            .channels
            .iter()
            .map(|channel| {
                let webhook = &channel.webhook;
                let destination = channel_destination(channel);
                let outbox = Outbox::open_with(
                    db,
                    service,
                    &destination,
                    &webhook.url,
                    OutboxOptions::external(),
                )
                .with_context(|| {
                    format!(
                        "opening the outbox for webhook {}",
                        obs_core::redact::origin(&webhook.url)
                    )
                })?;
                Ok(Hook {
                    channel: channel.clone(),
                    destination,
                    outbox,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Notifier {
            hooks: hooks.into(),
            routing: std::sync::Arc::new(routing),
        })
    }

    /// Whether any receiver has a channel: without one nothing is owed.
    pub fn is_enabled(&self) -> bool {
        self.routing.delivers()
    }

    pub fn hooks(&self) -> &[Hook] {
        &self.hooks
    }

    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    pub fn start(&self, context: &RoleContext) {
        for hook in self.hooks.iter() {
            hook.outbox.start(context);
        }
    }

    /// Deliver what a committed group staged without waiting for the outboxes' next poll.
    pub fn wake(&self) {
        for hook in self.hooks.iter() {
            hook.outbox.wake();
        }
    }
}

/// The outbox name and metrics label of a webhook: its kind and a hash of its URL, so the
/// same URL finds its queue (and its notified keys) again after a restart even if the list
/// was reordered, and the URL (which may hold a secret, as Slack's do) never appears in
/// metrics or in the database.
pub fn destination(webhook: &Webhook) -> String {
    format!(
        "webhook-{}-{:08x}",
        webhook.kind.as_str(),
        fnv(webhook.url.bytes()) as u32
    )
}

/// A channel's outbox name: its webhook's (so a URL moved from NOTIFY_WEBHOOKS into
/// NOTIFY_CONFIG keeps its queue and notified keys), or, when Slack fields make its messages
/// differ, one that hashes those too.
pub fn channel_destination(channel: &Channel) -> String {
    if channel.slack.is_empty() {
        return destination(&channel.webhook);
    }
    let fields = serde_json::to_string(&channel.slack).unwrap_or_default();
    let bytes = channel.webhook.url.bytes().chain([0]).chain(fields.bytes());
    format!(
        "webhook-{}-{:08x}",
        channel.webhook.kind.as_str(),
        fnv(bytes) as u32
    )
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
fn fnv(bytes: impl Iterator<Item = u8>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Stable for the same notices: the first change's incident and revision, and how many.
fn message_id(notices: &[Notice]) -> String {
    let first = &notices[0].plan.incident;
    format!("{}-r{}-n{}", first.id, first.revision, notices.len())
}

fn summary(notices: &[Notice]) -> String {
    let mut counts: Vec<(IncidentChange, usize)> = Vec::new();
    for notice in notices {
        let change = notice.plan.incident.change;
        match counts.iter_mut().find(|(c, _)| *c == change) {
            Some((_, n)) => *n += 1,
            None => counts.push((change, 1)),
        }
    }
    counts
        .iter()
        .map(|(change, n)| format!("{n} {}", change.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The generic JSON: every change with its incident and its plan's steps.
pub fn generic_message(notices: &[Notice], now: DateTime<Utc>) -> Value {
    let changes: Vec<Value> = notices
        .iter()
        .map(|notice| {
            let plan = &notice.plan;
            json!({
                "change": plan.incident.change,
                "incident": plan.incident,
                "plan": {
                    "id": plan.id,
                    "priority": plan.priority,
                    "state": plan.state,
                    "rule": plan.rule,
                    "summary": plan.summary,
                    "steps": plan.steps,
                    "revision": plan.revision,
                },
            })
        })
        .collect();
    json!({
        "id": message_id(notices),
        "source": "obs-fleet synthesizer",
        "sent_at": now,
        "summary": summary(notices),
        "changes": changes,
    })
}

/// Slack's mrkdwn: `&`, `<` and `>` are its only control characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `{"text": …}`: one line per change, its message and plan steps quoted under it.
pub fn slack_message(notices: &[Notice]) -> Value {
    let mut lines = vec![format!(
        "*obs-fleet: {}* ({})",
        if notices.len() == 1 {
            "1 incident update".to_string()
        } else {
            format!("{} incident updates", notices.len())
        },
        summary(notices)
    )];
    for notice in notices {
        let plan = &notice.plan;
        let incident = &plan.incident;
        let icon = match (incident.change, incident.severity) {
            (IncidentChange::Resolved, _) => ":white_check_mark:",
            (_, Severity::Critical) => ":red_circle:",
            (_, Severity::Warning) => ":large_orange_circle:",
            (_, Severity::Info) => ":large_blue_circle:",
        };
        lines.push(format!(
            "{icon} *{}* {} · {} — {} · {}",
            incident.severity.as_str().to_uppercase(),
            incident.change.as_str(),
            slack_escape(&incident.service),
            slack_escape(&incident.title),
            plan.priority.as_str()
        ));
        if incident.change != IncidentChange::Resolved {
            if !incident.message.is_empty() {
                lines.push(format!("> {}", slack_escape(&one_line(&incident.message))));
            }
            for (number, step) in plan.steps.iter().enumerate() {
                lines.push(format!(
                    "> {}. {}",
                    number + 1,
                    slack_escape(&one_line(&step.title))
                ));
            }
        }
    }
    json!({"text": lines.join("\n")})
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_stable_labels_without_the_url() {
        let hook = |kind, url: &str| Webhook {
            kind,
            url: url.into(),
        };
        let slack = destination(&hook(
            WebhookKind::Slack,
            "https://hooks.slack.com/services/T/B/SECRET",
        ));
        assert!(slack.starts_with("webhook-slack-"), "{slack}");
        assert!(!slack.contains("SECRET"));
        assert_eq!(
            slack,
            destination(&hook(
                WebhookKind::Slack,
                "https://hooks.slack.com/services/T/B/SECRET"
            ))
        );
        assert_ne!(
            destination(&hook(WebhookKind::Generic, "http://a/1")),
            destination(&hook(WebhookKind::Generic, "http://a/2"))
        );
        assert!(slack
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }

    #[test]
    fn slack_text_escapes_its_control_characters() {
        assert_eq!(slack_escape("<a> & b"), "&lt;a&gt; &amp; b");
    }
}
