//! `obsctl dead-letters`: the records a receiver refused, per sending role.

use std::collections::BTreeMap;

use obs_model::dead_letters::{DeadLetterPage, ReplayRequest};

use super::Context;
use crate::cli::{DeadLettersCommand, SendingRole};
use crate::client::ApiClient;
use crate::output;

/// How much of a record the text listing shows.
const RECORD_PREVIEW: usize = 100;

fn api(context: &Context, role: SendingRole) -> &ApiClient {
    match role {
        SendingRole::Watcher => context.watcher.api(),
        SendingRole::Curator => context.curator.api(),
        SendingRole::Planner => context.planner.api(),
        SendingRole::Synthesizer => context.synthesizer.api(),
    }
}

pub async fn run(context: &Context, command: &DeadLettersCommand) -> anyhow::Result<()> {
    match command {
        DeadLettersCommand::List {
            role,
            destination,
            limit,
        } => list(context, *role, destination.as_deref(), *limit).await,
        DeadLettersCommand::Replay {
            role,
            destination,
            seq,
        } => {
            let request = ReplayRequest {
                destination: destination.clone(),
                seq: (!seq.is_empty()).then(|| seq.clone()),
            };
            let api = api(context, *role);
            let replayed = api.replay_dead_letters(&request).await?;
            if context.json {
                return output::json(&replayed);
            }
            let mut text = format!(
                "{}: {} dead letter(s) put back in the outbox",
                api.role(),
                replayed.replayed
            );
            if replayed.remaining > 0 {
                text.push_str(&format!("; {} left, run it again", replayed.remaining));
            }
            text.push('\n');
            output::text(&text)
        }
    }
}

async fn list(
    context: &Context,
    role: Option<SendingRole>,
    destination: Option<&str>,
    limit: u32,
) -> anyhow::Result<()> {
    let roles: Vec<SendingRole> = role.map_or_else(|| SendingRole::ALL.to_vec(), |role| vec![role]);
    let mut by_role: BTreeMap<&str, DeadLetterPage> = BTreeMap::new();
    for role in roles {
        let api = api(context, role);
        by_role.insert(
            api.role(),
            api.dead_letters(destination, limit, None).await?,
        );
    }
    if context.json {
        return output::json(&by_role);
    }
    output::text(&render(&by_role))
}

fn render(by_role: &BTreeMap<&str, DeadLetterPage>) -> String {
    let total: usize = by_role.values().map(|page| page.dead_letters.len()).sum();
    if total == 0 {
        return "no dead letters: every record sent was accepted\n".into();
    }
    let mut text = String::new();
    for (role, page) in by_role {
        for letter in &page.dead_letters {
            let record = letter.record.to_string();
            let preview: String = record.chars().take(RECORD_PREVIEW).collect();
            let ellipsis = if record.chars().count() > RECORD_PREVIEW {
                "…"
            } else {
                ""
            };
            text.push_str(&format!(
                "{role} → {}  seq {}  {}\n  refused: {}\n  record: {preview}{ellipsis}\n",
                letter.destination,
                letter.seq,
                letter.failed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                letter.reason,
            ));
        }
        if page.next.is_some() {
            text.push_str(&format!("  ({role} has more: raise --limit)\n"));
        }
    }
    text.push_str("Put them back once the receiver takes them: obsctl dead-letters replay --role ROLE [--seq N]\n");
    text
}
