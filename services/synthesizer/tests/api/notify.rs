//! Notifications to real webhook receivers: both shapes, grouping, the severity floor, no
//! second message for a redelivered plan, and nothing lost while a receiver is down, even
//! across a restart of the synthesizer.

use std::time::Duration;

use obs_core::config::Peers;
use obs_model::{IncidentChange, Severity};
use obs_testkit::eventually;
use synthesizer::config::{Webhook, WebhookKind};
use synthesizer::SynthesizerConfig;

use crate::helpers::*;

fn notifying(hooks: &[(&Hook, WebhookKind)]) -> SynthesizerConfig {
    let mut settings = SynthesizerConfig::for_tests();
    settings.webhooks = hooks
        .iter()
        .map(|(hook, kind)| Webhook {
            kind: *kind,
            url: hook.url(),
        })
        .collect();
    settings
}

/// The titles a generic message carries, in order, with their changes.
fn changes(message: &serde_json::Value) -> Vec<(String, String)> {
    message["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["incident"]["title"].as_str().unwrap().to_string(),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn changes_are_grouped_into_one_message_per_webhook_in_each_shape() {
    let generic = Hook::start();
    let slack = Hook::start();
    let mut settings = notifying(&[
        (&generic, WebhookKind::Generic),
        (&slack, WebhookKind::Slack),
    ]);
    // Long enough that both batches below land in one group.
    settings.notify_group = Duration::from_secs(2);
    let mut config =
        obs_core::CoreConfig::for_tests("synthesizer", tempfile::tempdir().unwrap().keep());
    config.api_token = Some("fleet-secret".into());
    let app = spawn_with(config, settings).await;
    let auth = |request: reqwest::RequestBuilder| request.bearer_auth("fleet-secret");

    let api = plan("api", "api-1 crashed", Severity::Critical);
    let web = plan("web", "web answers <5xx> & worse", Severity::Warning);
    for batch in [vec![api.clone()], vec![web.clone()]] {
        let response = auth(app.client.post(app.url("/v1/plans")))
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    let messages = generic.wait_for(1).await;
    let message = &messages[0];
    assert_eq!(
        changes(message),
        [
            ("api-1 crashed".to_string(), "opened".to_string()),
            (
                "web answers <5xx> & worse".to_string(),
                "opened".to_string()
            )
        ]
    );
    assert_eq!(message["summary"], "2 opened");
    assert_eq!(message["source"], "obs-fleet synthesizer");
    assert!(message["id"]
        .as_str()
        .unwrap()
        .starts_with(&api.incident.id.to_string()));
    assert_eq!(message["changes"][0]["plan"]["priority"], "P1");
    assert_eq!(
        message["changes"][0]["plan"]["steps"][0]["title"],
        "Restart container api-1"
    );
    assert_eq!(message["changes"][0]["incident"]["severity"], "critical");

    let messages = slack.wait_for(1).await;
    let text = messages[0]["text"].as_str().unwrap();
    assert_eq!(
        messages[0].as_object().unwrap().len(),
        1,
        "Slack takes {{\"text\"}} alone"
    );
    assert!(
        text.starts_with("*obs-fleet: 2 incident updates* (2 opened)"),
        "{text}"
    );
    assert!(
        text.contains(":red_circle: *CRITICAL* opened · api — api-1 crashed · P1"),
        "{text}"
    );
    assert!(text.contains("> 1. Restart container api-1"), "{text}");
    assert!(
        text.contains("web answers &lt;5xx&gt; &amp; worse"),
        "Slack's mrkdwn is escaped: {text}"
    );
    assert!(
        !generic.any_authorized() && !slack.any_authorized(),
        "the fleet's token stays home"
    );

    // Resolving sends one more message each.
    let response = auth(app.client.post(app.url("/v1/plans")))
        .json(&[changed(&api, IncidentChange::Resolved)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let messages = generic.wait_for(2).await;
    assert_eq!(
        changes(&messages[1]),
        [("api-1 crashed".to_string(), "resolved".to_string())]
    );
    let messages = slack.wait_for(2).await;
    assert!(messages[1]["text"]
        .as_str()
        .unwrap()
        .contains(":white_check_mark:"));

    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"synthesizer_notifications_total{kind="generic"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"synthesizer_notifications_total{kind="slack"}"#),
        Some(2.0)
    );
    assert!(text.contains(r#"outbox_delivered_total{destination="webhook-slack-"#));
}

#[actix_web::test]
async fn below_the_floor_quiet_changes_and_redeliveries_send_nothing() {
    let hook = Hook::start();
    let mut settings = notifying(&[(&hook, WebhookKind::Generic)]);
    settings.notify_min_severity = Severity::Critical;
    let app = spawn(settings, Peers::default()).await;

    let warning = plan("web", "web is slow", Severity::Warning);
    let critical = plan("api", "api-1 crashed", Severity::Critical);
    post_plans(&app, &[warning.clone(), critical.clone()]).await;
    let messages = hook.wait_for(1).await;
    assert_eq!(
        changes(&messages[0]),
        [("api-1 crashed".to_string(), "opened".to_string())]
    );

    // The planner's outbox sends the same batch again; an acknowledgement is not news; a
    // plan revision for a step outcome is not news either.
    let tally = post_plans(&app, &[warning.clone(), critical.clone()]).await;
    assert_eq!(tally["stale"], 2);
    let acknowledged = changed(&critical, IncidentChange::Acknowledged);
    let mut outcome = acknowledged.clone();
    outcome.revision += 1;
    outcome.summary = "restarted once".into();
    post_plans(&app, &[acknowledged, outcome.clone()]).await;
    // Something that is news, sent last: when its message arrives, anything the copies
    // above had wrongly caused would have arrived before it (one outbox, in order).
    let escalated = changed(&warning, IncidentChange::Escalated);
    post_plans(&app, &[escalated]).await;
    let messages = hook.wait_for(2).await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_eq!(
        changes(&messages[1]),
        [("web is slow".to_string(), "escalated".to_string())]
    );
}

#[actix_web::test]
async fn a_receiver_that_is_down_gets_everything_later_even_across_a_restart() {
    let mut hook = Hook::start();
    hook.stop().await;
    let state = tempfile::tempdir().unwrap();
    let settings = notifying(&[(&hook, WebhookKind::Generic)]);
    let app = spawn_in(state.path(), settings.clone(), Peers::default()).await;
    let plans: Vec<_> = (0..3)
        .map(|n| {
            plan(
                &format!("svc{n}"),
                &format!("svc{n} crashed"),
                Severity::Critical,
            )
        })
        .collect();
    post_plans(&app, &plans[..2]).await;
    eventually(
        "delivery attempts to fail",
        Duration::from_secs(20),
        || async {
            let text = metrics(&app).await;
            sample(
                &text,
                &format!(
                    r#"outbox_retries_total{{destination="{}"}}"#,
                    destination(&hook)
                ),
            )
            .filter(|n| *n >= 1.0)
        },
    )
    .await;
    // One more while it is down, then the synthesizer restarts: whether that one is still
    // waiting for its group or already in the outbox, it is on disk.
    post_plans(&app, &plans[2..]).await;
    app.shutdown().await.unwrap();

    let app = spawn_in(state.path(), settings, Peers::default()).await;
    hook.restart().await;
    let titles = eventually(
        "every change delivered",
        Duration::from_secs(30),
        || async {
            let titles: Vec<String> = hook
                .messages()
                .iter()
                .flat_map(|m| changes(m).into_iter().map(|(title, _)| title))
                .collect();
            (titles.len() >= 3).then_some(titles)
        },
    )
    .await;
    let mut distinct = titles.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct,
        ["svc0 crashed", "svc1 crashed", "svc2 crashed"],
        "{titles:?}"
    );
    drop(app);
}

fn destination(hook: &Hook) -> String {
    synthesizer::notify::destination(&Webhook {
        kind: WebhookKind::Generic,
        url: hook.url(),
    })
}
