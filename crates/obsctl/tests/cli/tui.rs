//! The live view in a real terminal: tmux runs `obsctl tui` in a 160×48 pane and
//! `capture-pane` shows what a person would see. Also colour in a real terminal, and
//! NO_COLOR.

use std::path::PathBuf;
use std::process::Command;

use obs_testkit::{eventually, tool};

use crate::support::{obsctl, obsctl_path, unique, Watcher, PATIENCE};

/// A private tmux server (its own socket) with one session; killed on drop.
struct Tmux {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

const SESSION: &str = "obsctl";

impl Tmux {
    /// Run `command` (program and arguments, no shell quoting) in a `width`×`height` pane.
    /// A small shell around it prints its exit status and keeps the pane open, so what it
    /// printed and how it ended can both be read afterwards.
    fn start(width: u16, height: u16, command: &[&str]) -> Tmux {
        let dir = tempfile::tempdir().expect("a folder for the tmux socket");
        let tmux = Tmux {
            socket: dir.path().join("tmux.sock"),
            _dir: dir,
        };
        let (width, height) = (width.to_string(), height.to_string());
        let mut args = vec![
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            &width,
            "-y",
            &height,
            "--",
            "sh",
            "-c",
            r#""$0" "$@"; echo "exited with $?"; exec sleep 600"#,
        ];
        args.extend_from_slice(command);
        tmux.run(&args);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new(tool("tmux"))
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The pane's text, as a person sees it.
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", SESSION])
    }

    /// The pane's text with its colours as escape sequences.
    fn screen_with_colours(&self) -> String {
        self.run(&["capture-pane", "-p", "-e", "-t", SESSION])
    }

    /// Everything the pane printed, scrolled-off lines too, with colours.
    fn history_with_colours(&self) -> String {
        self.run(&["capture-pane", "-p", "-e", "-S", "-", "-t", SESSION])
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", SESSION, keys]);
    }

    /// The exit status once the pane's program has exited (the shell around it says so).
    fn exit_status(&self) -> Option<i32> {
        self.run(&["capture-pane", "-p", "-S", "-", "-t", SESSION])
            .lines()
            .find_map(|line| line.split("exited with ").nth(1))
            .and_then(|status| status.trim().parse().ok())
    }

    /// Wait until the screen satisfies `check`; fail showing the last screen.
    async fn until(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let check = &check;
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// Whether `text` follows a switch to ANSI colour `colour` (1 red, 2 green, 6 cyan …);
/// tmux writes colours back as `ESC[3Nm` or `ESC[38;5;Nm`.
fn coloured_as(screen: &str, colour: u8, text: &str) -> bool {
    screen.contains(&format!("[3{colour}m{text}"))
        || screen.contains(&format!("38;5;{colour}m{text}"))
        || screen.contains(&format!("38;5;{colour}m\u{1b}[49m{text}"))
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

#[tokio::test]
async fn the_tui_shows_services_and_fresh_events_survives_the_watcher_leaving_and_quits_on_q() {
    let mut watcher = Watcher::start_with(&[("APP_NAME", "shop")]).await;
    let url = watcher.url.clone();
    for service in ["api", "worker"] {
        obsctl(
            &url,
            &[
                "heartbeat",
                service,
                "--phase",
                "serving",
                "--timeout-seconds",
                "600",
            ],
        )
        .await
        .ok();
    }
    obsctl(&url, &["event", "api", "start", "--detail", "booted"])
        .await
        .ok();
    obsctl(
        &url,
        &["heartbeat", "backup", "--fail", "--detail", "disk full"],
    )
    .await
    .ok();

    let tmux = Tmux::start(
        160,
        48,
        &[
            obsctl_path(),
            "--watcher-url",
            &url,
            "tui",
            "--interval",
            "1",
        ],
    );
    let screen = tmux
        .until("the services", |s| s.contains("Services 2 up · 1 down"))
        .await;
    for expected in [
        &format!("watcher {url} · app shop · docker: not watched")[..],
        "3 services: 2 up, 1 down · 1 open issue (1 critical)",
        "● up   api",
        "● up   worker",
        "● down backup",
        "reported a failure since",
        "✓ start",
        "booted",
        "Open issues 1 · 1 critical",
        "✕ CRITICAL backup service_failed",
        "disk full",
        "→ ",
        "q/Esc quit",
    ] {
        assert!(
            screen.contains(expected),
            "missing {expected:?} on\n{screen}"
        );
    }
    let lines: Vec<&str> = screen.lines().collect();
    assert_eq!(lines.len(), 48, "the whole pane is drawn:\n{screen}");
    assert!(lines.iter().all(|l| l.chars().count() <= 160));

    // A fresh event appears within a few refreshes, newest first, in the restart colour.
    let (stopped, oom, fresh) = (unique("stopped"), unique("oom"), unique("fresh"));
    for (kind, detail) in [("stop", &stopped), ("oom", &oom), ("restart", &fresh)] {
        obsctl(&url, &["event", "web", kind, "--detail", detail])
            .await
            .ok();
    }
    let screen = tmux.until("the fresh event", |s| s.contains(&fresh)).await;
    let events_top = screen
        .lines()
        .position(|l| l.contains("(newest first)"))
        .unwrap_or_else(|| panic!("the events pane:\n{screen}"));
    assert!(
        screen.lines().nth(events_top + 1).unwrap().contains(&fresh),
        "newest first:\n{screen}"
    );
    let coloured = tmux.screen_with_colours();
    let line = coloured.lines().find(|l| l.contains(&fresh)).unwrap();
    assert!(coloured_as(line, 6, "↻ restart"), "cyan restart: {line:?}");
    let start = coloured.lines().find(|l| l.contains("booted")).unwrap();
    assert!(coloured_as(start, 2, "✓ start"), "green start: {start:?}");
    let stop = coloured.lines().find(|l| l.contains(&stopped)).unwrap();
    assert!(coloured_as(stop, 3, "■ stop"), "yellow stop: {stop:?}");
    let oom = coloured.lines().find(|l| l.contains(&oom)).unwrap();
    assert!(coloured_as(oom, 1, "✕ oom"), "red OOM: {oom:?}");

    // The watcher goes away: said on screen, the last data kept, and retried.
    watcher.stop();
    let screen = tmux
        .until("unreachable", |s| s.contains("✕ watcher unreachable"))
        .await;
    assert!(screen.contains("retrying every 1s"), "{screen}");
    assert!(
        screen.contains("● up   api"),
        "the last data stays:\n{screen}"
    );
    watcher.restart().await;
    tmux.until("the watcher back", |s| {
        !s.contains("watcher unreachable") && s.contains("● up   worker")
    })
    .await;

    tmux.keys("q");
    let status = eventually("the tui to exit on q", PATIENCE, || async {
        tmux.exit_status()
    })
    .await;
    assert_eq!(status, 0, "exit status; screen:\n{}", tmux.screen());
}

#[tokio::test]
async fn escape_quits_and_a_watcher_that_never_answers_is_shown_not_fatal() {
    let url = format!("http://127.0.0.1:{}", obs_testkit::free_port());
    let tmux = Tmux::start(
        100,
        30,
        &[
            obsctl_path(),
            "--watcher-url",
            &url,
            "tui",
            "--interval",
            "0.5",
        ],
    );
    let screen = tmux
        .until("unreachable", |s| s.contains("✕ watcher unreachable"))
        .await;
    assert!(screen.contains("No data yet"), "{screen}");
    assert!(screen.contains("connection refused"), "{screen}");
    tmux.keys("Escape");
    let status = eventually("the tui to exit on Esc", PATIENCE, || async {
        tmux.exit_status()
    })
    .await;
    assert_eq!(status, 0);
}

#[tokio::test]
async fn colour_in_a_terminal_unless_no_color_and_never_into_a_pipe() {
    let watcher = Watcher::start().await;
    let url = watcher.url.clone();
    obsctl(&url, &["event", "api", "start"]).await.ok();
    obsctl(&url, &["event", "api", "die", "--detail", "boom"])
        .await
        .ok();

    let coloured = Tmux::start(120, 10, &[obsctl_path(), "--watcher-url", &url, "events"]);
    eventually("events printed", PATIENCE, || async {
        coloured.exit_status()
    })
    .await;
    let screen = coloured.screen_with_colours();
    assert!(
        screen.contains("\u{1b}[32m["),
        "green start on a terminal: {screen:?}"
    );
    assert!(
        screen.contains("\u{1b}[31m["),
        "red die on a terminal: {screen:?}"
    );

    let plain = Tmux::start(
        120,
        10,
        &[
            "env",
            "NO_COLOR=1",
            obsctl_path(),
            "--watcher-url",
            &url,
            "events",
        ],
    );
    eventually("events printed", PATIENCE, || async { plain.exit_status() }).await;
    let screen = plain.history_with_colours();
    assert!(screen.contains("✕ die"), "{screen}");
    assert!(
        !screen.contains("\u{1b}[3"),
        "NO_COLOR: no colour: {screen:?}"
    );

    let piped = obsctl(&url, &["events"]).await;
    assert!(!piped.ok().contains('\u{1b}'));
    let forced = obsctl(&url, &["events", "--color", "always"]).await;
    assert!(forced.ok().contains("\u{1b}[31m"), "{forced:#?}");
}
