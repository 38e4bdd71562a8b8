//! Silences on the real curator through obsctl: added with amtool matchers, marking the
//! incidents they match, listed, deleted.

use obs_model::{Incident, IssueKind, Severity, Silence, SilenceState};

use crate::roles::{issue, obsctl_at, Role};

#[actix_web::test]
async fn a_silence_marks_what_it_matches_until_it_is_deleted() {
    let curator = Role::curator().await;
    let url = curator.url();

    let added = obsctl_at(
        "curator",
        url,
        &[
            "silence",
            "add",
            "-m",
            "service=api",
            "--matcher",
            "kind=~oom.*",
            "--for",
            "2h",
            "--comment",
            "deploying api",
            "--by",
            "alice",
        ],
    )
    .await;
    let line = added.ok();
    assert!(line.starts_with("silence "), "{line}");
    assert!(
        line.trim_end()
            .ends_with(r#"(in 2h): service="api" kind=~"oom.*""#),
        "{line}"
    );
    let id = line.split_whitespace().nth(1).unwrap().to_string();

    let silences: Vec<Silence> = obsctl_at("curator", url, &["--json", "silence", "list"])
        .await
        .json();
    assert_eq!(silences.len(), 1);
    let silence = &silences[0];
    assert_eq!(silence.id.to_string(), id);
    assert_eq!(silence.state, SilenceState::Active);
    assert_eq!(silence.created_by.as_deref(), Some("alice"));
    assert_eq!(silence.comment, "deploying api");
    let hours = (silence.ends_at - silence.created_at).num_minutes();
    assert!((119..=120).contains(&hours), "two hours: {silence:?}");
    assert!(silence.matchers[1].is_regex && silence.matchers[1].is_equal);

    let text = obsctl_at("curator", url, &["silence", "ls"]).await;
    let lines: Vec<&str> = text.ok().lines().collect();
    assert!(
        lines[1].starts_with(&format!("{id}  active  in ")),
        "{lines:#?}"
    );
    assert!(
        lines[1].ends_with(r#"service="api" kind=~"oom.*"  alice  deploying api"#),
        "{lines:#?}"
    );

    curator
        .feed(
            "/v1/issues",
            &[
                issue(
                    "01JC3Z8Q2J6W7V2N5Y4M1K0P9R",
                    "api",
                    IssueKind::OomKilled,
                    Severity::Critical,
                ),
                issue(
                    "01JD5T0000000000000000000A",
                    "api",
                    IssueKind::Unhealthy,
                    Severity::Warning,
                ),
            ],
        )
        .await;
    let incidents = obsctl_at("curator", url, &["incidents"]).await;
    let lines: Vec<&str> = incidents.ok().lines().collect();
    assert!(lines[0].contains("MARKS"), "{lines:#?}");
    assert!(
        lines[1].contains("silenced"),
        "the OOM is silenced: {lines:#?}"
    );
    assert!(
        !lines[2].contains("silenced"),
        "unhealthy is not: {lines:#?}"
    );

    // A unique prefix is enough to delete it.
    let deleted = obsctl_at("curator", url, &["silence", "delete", &id[..8]]).await;
    assert!(
        deleted
            .ok()
            .starts_with(&format!("silence {id} deleted: service=")),
        "{deleted:#?}"
    );
    assert_eq!(
        obsctl_at("curator", url, &["silence", "list"]).await.ok(),
        "no silences\n"
    );
    let oom: Incident = obsctl_at(
        "curator",
        url,
        &["--json", "incident", "01JC3Z8Q2J6W7V2N5Y4M1K0P9R"],
    )
    .await
    .json();
    assert_eq!(oom.silenced, None, "unmarked when the silence ends");

    let run = obsctl_at("curator", url, &["silence", "delete", &id]).await;
    assert_eq!(
        run.failure(1),
        format!(
            "obsctl: curator refused DELETE /v1/silences/{id} (404 not_found): no silence {id}"
        )
    );
}

#[actix_web::test]
async fn until_sets_the_end_and_the_curator_judges_the_rest() {
    let curator = Role::curator().await;
    let url = curator.url();
    let end = (chrono::Utc::now() + chrono::Duration::hours(3))
        .with_timezone(&chrono::FixedOffset::east_opt(3_600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let silence: Silence = obsctl_at(
        "curator",
        url,
        &[
            "--json",
            "silence",
            "add",
            "-m",
            "service=~api|web",
            "-m",
            "severity!~info|warning",
            "--until",
            &end,
            "-c",
            "night",
        ],
    )
    .await
    .json();
    assert_eq!(
        silence.ends_at,
        chrono::DateTime::parse_from_rfc3339(&end).unwrap()
    );
    assert!(silence.matchers[0].is_equal && silence.matchers[0].is_regex);
    assert!(!silence.matchers[1].is_equal && silence.matchers[1].is_regex);

    // What only the curator can judge comes back as its one-line 400, nothing added.
    let cases: &[(&[&str], &str)] = &[
        (
            &["-m", "kind=~oom(", "--for", "1h", "-c", "x"],
            "matchers[0].value: is not a valid regular expression",
        ),
        (
            &["-m", "service=api", "--for", "1h", "-c", " "],
            "comment: must say why",
        ),
        (
            &["-m", "service=api", "--for", "400d", "-c", "x"],
            "ends_at: must be within 366 days",
        ),
        (
            &[
                "-m",
                "service=api",
                "--until",
                "2001-01-01T00:00:00Z",
                "-c",
                "x",
            ],
            "ends_at: must be in the future",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["silence", "add"];
        all.extend_from_slice(args);
        let run = obsctl_at("curator", url, &all).await;
        let line = run.failure(1);
        assert!(
            line.starts_with("obsctl: curator refused POST /v1/silences (400 invalid_field): ")
                && line.contains(message),
            "{args:?}: {line}"
        );
    }
    let silences: Vec<Silence> = obsctl_at("curator", url, &["--json", "silence", "list"])
        .await
        .json();
    assert_eq!(silences.len(), 1, "only the good one");
}
