//! What goes wrong is one line on stderr and an exit code a script can test: 1 when the
//! request fails, 2 when the command line is wrong.

use crate::support::{obsctl, obsctl_env, Watcher};

/// Every command, with the arguments it needs.
const COMMANDS: &[&[&str]] = &[
    &["status"],
    &["status", "--verbose"],
    &["events"],
    &["events", "--follow"],
    &["issues"],
    &["logs", "web"],
    &["heartbeat", "api"],
    &["heartbeat", "api", "--fail"],
    &["event", "api", "deploy"],
];

#[tokio::test]
async fn an_unreachable_watcher_is_one_line_and_exit_1_for_every_command() {
    // A port nothing listens on: bound, then released.
    let url = format!("http://127.0.0.1:{}", obs_testkit::free_port());
    for args in COMMANDS {
        for json in [false, true] {
            let mut all: Vec<&str> = args.to_vec();
            if json {
                all.push("--json");
            }
            let run = obsctl(&url, &all).await;
            let line = run.failure(1);
            assert_eq!(line.lines().count(), 1, "{all:?}: {run:#?}");
            assert_eq!(
                line,
                format!(
                    "obsctl: watcher at {url} is unreachable (connection refused); is it running? \
                     (--watcher-url or OBS_WATCHER_URL)"
                ),
                "{all:?}"
            );
            assert!(run.stdout.is_empty(), "{all:?}: {run:#?}");
        }
    }
}

#[tokio::test]
async fn the_url_comes_from_the_environment_too() {
    let watcher = Watcher::start().await;
    let run = crate::support::run(
        crate::support::obsctl_command(&["status", "--json"]).env("OBS_WATCHER_URL", &watcher.url),
    )
    .await;
    let status: obs_model::WatcherStatus = run.json();
    assert!(status.services.is_empty());
}

#[tokio::test]
async fn bad_flags_are_clap_errors_with_exit_2() {
    let url = "http://127.0.0.1:9";
    let cases: &[(&[&str], &str)] = &[
        (&["status", "--bogus"], "--bogus"),
        (&["events", "--limit", "0"], "--limit"),
        (&["events", "--limit", "many"], "--limit"),
        (&["events", "--interval", "1"], "--follow"),
        (&["issues", "--state", "closed"], "--state"),
        (&["logs"], "<CONTAINER>"),
        (&["logs", "web", "--lines", "0"], "--lines"),
        (&["logs", "web", "--lines", "10001"], "--lines"),
        (&["heartbeat"], "<SERVICE>"),
        (
            &["heartbeat", "api", "--timeout-seconds=-1"],
            "--timeout-seconds",
        ),
        (&["heartbeat", "api", "--detail", "x"], "--fail"),
        (&["heartbeat", "api", "--fail", "--phase", "x"], "--phase"),
        (&["event", "api"], "<EVENT_TYPE>"),
        (
            &["heartbeat", "api", "--timeout-seconds", "0"],
            "--timeout-seconds",
        ),
        (&["tui", "--interval", "0"], "--interval"),
        (&["tui", "--json"], "--json"),
        (&["--timeout", "soon", "status"], "--timeout"),
        (&["--color", "sometimes", "status"], "--color"),
        (&["frobnicate"], "frobnicate"),
        (&[], "Usage"),
    ];
    for (args, named) in cases {
        let run = obsctl(url, args).await;
        let stderr = run.failure(2);
        assert!(
            stderr.contains(named),
            "{args:?} should name {named}: {stderr}"
        );
        assert!(run.stdout.is_empty(), "{args:?}: {run:#?}");
    }
    for url in ["nope", "ftp://host", "http://host/?q=1"] {
        let run = obsctl(url, &["status"]).await;
        assert!(run.failure(2).contains("--watcher-url"), "{url}: {run:#?}");
    }
    let from_env = obsctl_env("http://127.0.0.1:9", &["status"], &[]).await;
    assert_eq!(from_env.code, Some(1), "a valid URL is not a usage error");
}

#[tokio::test]
async fn the_watchers_own_answers_to_bad_input_are_passed_on_in_one_line() {
    let watcher = Watcher::start().await;
    let url = &watcher.url;
    let run = obsctl(url, &["heartbeat", "bad name"]).await;
    assert_eq!(
        run.failure(1),
        "obsctl: watcher refused POST /heartbeat (400 invalid_field): service: contains ' '; \
         only letters, digits and - _ . : @ are allowed"
    );
    let run = obsctl(
        url,
        &["event", "api", "deploy", "--detail", &"x".repeat(5000)],
    )
    .await;
    let line = run.failure(1);
    assert!(line.contains("(400 invalid_field): detail:"), "{line}");
    let run = obsctl(url, &["heartbeat", "api", "--timeout-seconds", "99999999"]).await;
    assert!(run.failure(1).contains("timeout_seconds"), "{run:#?}");
    // The service name is one path segment, whatever it contains.
    let run = obsctl(url, &["heartbeat", "a/b", "--fail"]).await;
    assert!(
        run.failure(1).contains("POST /ping/a%2Fb/fail (400"),
        "{run:#?}"
    );
    // Nothing was recorded by any of that.
    let status: obs_model::WatcherStatus = obsctl(url, &["--json", "status"]).await.json();
    assert!(status.services.is_empty(), "{status:?}");
}

#[tokio::test]
async fn a_token_guarded_watcher_asks_for_the_token_and_takes_it_from_flag_or_env() {
    let watcher = Watcher::start_with(&[("API_TOKEN", "s3cret")]).await;
    let url = &watcher.url;
    let run = obsctl(url, &["heartbeat", "api"]).await;
    assert_eq!(
        run.failure(1),
        "obsctl: watcher refused POST /heartbeat (401 unauthorized): missing or wrong bearer \
         token (pass --token or set OBS_API_TOKEN)"
    );
    assert_eq!(
        obsctl(url, &["heartbeat", "api", "--token", "wrong"])
            .await
            .code,
        Some(1)
    );
    obsctl(url, &["heartbeat", "api", "--token", "s3cret"])
        .await
        .ok();
    obsctl_env(
        url,
        &["event", "api", "deploy"],
        &[("OBS_API_TOKEN", "s3cret")],
    )
    .await
    .ok();
    // Reading needs no token.
    let status: obs_model::WatcherStatus = obsctl(url, &["--json", "status"]).await.json();
    assert_eq!(status.services.len(), 1);
}

#[tokio::test]
async fn a_base_url_keeps_its_path_and_a_wrong_one_is_one_line() {
    // Behind a proxy the watcher may live under a prefix; here nothing is there: 404.
    let watcher = Watcher::start().await;
    let run = obsctl(&format!("{}/watcher", watcher.url), &["status"]).await;
    let line = run.failure(1);
    assert!(
        line.starts_with("obsctl: watcher refused GET /watcher/status (404 not_found)"),
        "{line}"
    );
}

/// The other roles' commands, each with the role it asks first.
const ROLE_COMMANDS: &[(&str, &[&str])] = &[
    ("curator", &["incidents"]),
    ("curator", &["incident", "01JC3Z8Q2J6W7V2N5Y4M1K0P9R"]),
    ("curator", &["incident", "01JC"]),
    ("curator", &["ack", "01JC3Z8Q2J6W7V2N5Y4M1K0P9R"]),
    ("curator", &["resolve", "01JC"]),
    ("curator", &["silence", "list"]),
    (
        "curator",
        &[
            "silence",
            "add",
            "-m",
            "service=api",
            "--for",
            "1h",
            "-c",
            "x",
        ],
    ),
    ("curator", &["silence", "delete", "01JC"]),
    ("planner", &["plans"]),
    ("planner", &["plan", "01JC3Z8Q2J6W7V2N5Y4M1K0P9R"]),
    ("synthesizer", &["report"]),
    ("synthesizer", &["report", "--format", "html"]),
];

#[tokio::test]
async fn an_unreachable_role_is_one_line_naming_its_url_flag_and_variable() {
    let url = format!("http://127.0.0.1:{}", obs_testkit::free_port());
    for (role, args) in ROLE_COMMANDS {
        // `--json` with `--format html` is a usage error, tested below.
        let variants: &[bool] = if args.contains(&"--format") {
            &[false]
        } else {
            &[false, true]
        };
        for &json in variants {
            let mut all = vec![
                "--curator-url",
                &url,
                "--planner-url",
                &url,
                "--synthesizer-url",
                &url,
            ];
            all.extend_from_slice(args);
            if json {
                all.push("--json");
            }
            let run = crate::support::run(&mut crate::support::obsctl_command(&all)).await;
            assert_eq!(
                run.failure(1),
                format!(
                    "obsctl: {role} at {url} is unreachable (connection refused); is it running? \
                     (--{role}-url or OBS_{}_URL)",
                    role.to_uppercase()
                ),
                "{all:?}"
            );
            assert!(run.stdout.is_empty(), "{all:?}: {run:#?}");
        }
    }
    // The defaults are the local ports of DESIGN §1; the variables override them.
    let run = crate::support::run(
        crate::support::obsctl_command(&["plans"]).env("OBS_PLANNER_URL", &url),
    )
    .await;
    assert!(
        run.failure(1).contains(&format!("planner at {url} ")),
        "{run:#?}"
    );
}

#[tokio::test]
async fn bad_matchers_durations_and_states_are_clap_errors_with_exit_2() {
    let url = "http://127.0.0.1:9";
    let add = ["silence", "add", "-c", "why"];
    let cases: &[(&[&str], &str)] = &[
        (&["-m", "service", "--for", "1h"], "no operator"),
        (&["-m", "=api", "--for", "1h"], "no name before ="),
        (&["-m", "service!api", "--for", "1h"], "one of = != =~ !~"),
        (&["-m", "my-label=x", "--for", "1h"], "not a matcher name"),
        (&["-m", "service=api", "--for", "2"], "`2` needs a unit"),
        (&["-m", "service=api", "--for", "1.5h"], "is not a unit"),
        (&["-m", "service=api", "--for", "0m"], "longer than zero"),
        (&["-m", "service=api", "--until", "tomorrow"], "RFC 3339"),
        (&["-m", "service=api"], "--for"),
        (
            &[
                "-m",
                "service=api",
                "--for",
                "1h",
                "--until",
                "2030-01-01T00:00:00Z",
            ],
            "--until",
        ),
        (&["--for", "1h"], "--matcher"),
    ];
    for (args, named) in cases {
        let mut all: Vec<&str> = add.to_vec();
        all.extend_from_slice(args);
        let run = obsctl(url, &all).await;
        let stderr = run.failure(2);
        assert!(
            stderr.contains(named),
            "{all:?} should say {named}: {stderr}"
        );
        assert!(run.stdout.is_empty(), "{all:?}: {run:#?}");
    }
    let cases: &[(&[&str], &str)] = &[
        (
            &["silence", "add", "-m", "service=api", "--for", "1h"],
            "--comment",
        ),
        (&["silence"], "Usage"),
        (&["incidents", "--state", "closed"], "--state"),
        (&["incidents", "--severity", "fatal"], "--severity"),
        (&["ack"], "<ID>"),
        (&["resolve", "--comment"], "--comment"),
        (&["plans", "--state", "active"], "--state"),
        (&["report", "--format", "pdf"], "--format"),
        (&["report", "--format", "md", "--json"], "--json"),
        (&["--curator-url", "nope", "incidents"], "--curator-url"),
        (&["--planner-url", "ftp://host", "plans"], "--planner-url"),
        (
            &["--synthesizer-url", "http://host/?q=1", "report"],
            "--synthesizer-url",
        ),
    ];
    for (args, named) in cases {
        let run = obsctl(url, args).await;
        let stderr = run.failure(2);
        assert!(
            stderr.contains(named),
            "{args:?} should name {named}: {stderr}"
        );
        assert!(run.stdout.is_empty(), "{args:?}: {run:#?}");
    }
}
