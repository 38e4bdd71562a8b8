//! `events --follow`: the recent events, then each new one exactly once, across a watcher
//! restart, until Ctrl-C.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout};

use crate::support::{obsctl, obsctl_command, Watcher, PATIENCE};

struct Following {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Following {
    fn start(url: &str, extra: &[&str]) -> Following {
        let mut args = vec![
            "--watcher-url",
            url,
            "events",
            "--follow",
            "--interval",
            "0.2",
        ];
        args.extend_from_slice(extra);
        let mut child = obsctl_command(&args).spawn().expect("obsctl starts");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        Following {
            child,
            stdout,
            stderr,
        }
    }

    async fn line(&mut self) -> String {
        next(&mut self.stdout, "a line on stdout").await
    }

    async fn note(&mut self) -> String {
        next(&mut self.stderr, "a line on stderr").await
    }

    /// Ctrl-C ends it cleanly.
    async fn interrupt(mut self) {
        let pid = self.child.id().expect("still running") as i32;
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("obsctl stops on Ctrl-C")
            .expect("its exit status");
        assert_eq!(status.code(), Some(0), "{status}");
    }
}

async fn next<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Lines<R>, what: &str) -> String {
    tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {PATIENCE:?}"))
        .expect("reading obsctl's output")
        .unwrap_or_else(|| panic!("obsctl ended before {what}"))
}

async fn post(url: &str, detail: &str) {
    obsctl(url, &["event", "-q", "api", "deploy", "--detail", detail])
        .await
        .ok();
}

#[tokio::test]
async fn follow_prints_the_recent_events_then_each_new_one_once() {
    let mut watcher = Watcher::start().await;
    let url = watcher.url.clone();
    post(&url, "before").await;
    let mut following = Following::start(&url, &[]);
    assert!(following.line().await.ends_with("before"));

    for n in 0..3 {
        post(&url, &format!("after-{n}")).await;
    }
    for n in 0..3 {
        let line = following.line().await;
        assert!(
            line.ends_with(&format!("after-{n}")),
            "in order, once: {line}"
        );
    }
    // Many polls later, the next line is the next event, not a repeat of an old one.
    tokio::time::sleep(Duration::from_millis(800)).await;
    post(&url, "later").await;
    assert!(following.line().await.ends_with("later"));

    // The watcher goes away and comes back: said on stderr, nothing repeated on stdout.
    watcher.stop();
    let note = following.note().await;
    assert!(
        note.starts_with(&format!("obsctl: watcher at {url} is unreachable"))
            && note.ends_with("retrying every 0.2s"),
        "{note}"
    );
    watcher.restart().await;
    assert_eq!(following.note().await, "obsctl: watcher reachable again");
    post(&url, "after-restart").await;
    let line = following.line().await;
    assert!(
        line.ends_with("after-restart"),
        "no repeats after a restart: {line}"
    );

    following.interrupt().await;
}

#[tokio::test]
async fn follow_with_json_prints_one_event_per_line() {
    let watcher = Watcher::start().await;
    let url = watcher.url.clone();
    post(&url, "one").await;
    let mut following = Following::start(&url, &["--json", "--limit", "5"]);
    let first: obs_model::Event = serde_json::from_str(&following.line().await).unwrap();
    assert_eq!(first.detail.as_deref(), Some("one"));
    post(&url, "two").await;
    let second: obs_model::Event = serde_json::from_str(&following.line().await).unwrap();
    assert_eq!(second.detail.as_deref(), Some("two"));
    assert_ne!(first.id, second.id);
    following.interrupt().await;
}

#[tokio::test]
async fn follow_with_a_service_filter_prints_only_that_service() {
    let watcher = Watcher::start().await;
    let url = watcher.url.clone();
    let mut following = Following::start(&url, &["--service", "db"]);
    obsctl(
        &url,
        &["event", "-q", "api", "deploy", "--detail", "not-this"],
    )
    .await
    .ok();
    obsctl(&url, &["event", "-q", "db", "vacuum", "--detail", "this"])
        .await
        .ok();
    let line = following.line().await;
    assert!(line.contains("vacuum") && line.ends_with("this"), "{line}");
    following.interrupt().await;
}

#[tokio::test]
async fn follow_with_a_limit_prints_the_latest_then_only_new_ones() {
    let watcher = Watcher::start().await;
    let url = watcher.url.clone();
    for n in 0..5 {
        post(&url, &format!("old-{n}")).await;
    }
    let mut following = Following::start(&url, &["--limit", "2"]);
    assert!(following.line().await.ends_with("old-3"));
    assert!(following.line().await.ends_with("old-4"));
    // Several polls pass: the older history is not printed after the latest.
    tokio::time::sleep(Duration::from_millis(800)).await;
    post(&url, "new").await;
    let line = following.line().await;
    assert!(line.ends_with("new"), "only the new event follows: {line}");
    following.interrupt().await;
}
