//! The real watcher binary on a free loopback port, and obsctl run as a process against it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use obs_testkit::{binary, client, eventually, free_port, ChildGuard};
use serde::de::DeserializeOwned;

/// How long one obsctl run may take before the test calls it hung.
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// How long the watcher and the TUI get to show what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(20);

static SEQUENCE: AtomicUsize = AtomicUsize::new(0);

/// A name no other test or run uses: `obsctl-test-<pid>-<n>-<what>`.
pub fn unique(what: &str) -> String {
    format!(
        "obsctl-test-{}-{}-{what}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// The watcher binary with its state in a temporary folder; killed on drop.
pub struct Watcher {
    pub url: String,
    port: u16,
    state: tempfile::TempDir,
    env: Vec<(String, String)>,
    child: Option<ChildGuard>,
}

impl Watcher {
    /// A watcher that checks deadlines often and leaves Docker alone.
    pub async fn start() -> Watcher {
        Watcher::start_with(&[]).await
    }

    /// `env` is added to (and overrides) the defaults.
    pub async fn start_with(env: &[(&str, &str)]) -> Watcher {
        let port = free_port();
        let mut watcher = Watcher {
            url: format!("http://127.0.0.1:{port}"),
            port,
            state: tempfile::tempdir().expect("a state folder"),
            env: env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            child: None,
        };
        watcher.launch().await;
        watcher
    }

    async fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("the watcher's log file");
        let mut command = Command::new(binary("watcher"));
        command
            .env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", self.port.to_string())
            .env("STATE_DIR", self.state.path())
            .env("LOG_LEVEL", "warn")
            .env("DOCKER_WATCH", "off")
            .env("HOST_METRICS_INTERVAL", "0")
            .env("MONITOR_HEARTBEAT_CHECK_INTERVAL", "0.2")
            .env("STATE_SAVE_INTERVAL", "0.2")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file, twice"))
            .stderr(log);
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            command.env("DOCKER_HOST", host);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        self.child = Some(ChildGuard(Some(
            command.spawn().expect("the watcher binary starts"),
        )));
        let http = client();
        let ready = format!("{}/readyz", self.url);
        eventually("the watcher to be ready", PATIENCE, || {
            let request = http.get(&ready).send();
            async move { (request.await.ok()?.status() == 200).then_some(()) }
        })
        .await;
    }

    fn log_path(&self) -> PathBuf {
        self.state.path().join("watcher.log")
    }

    /// What the watcher logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// SIGTERM, as an operator or Kubernetes stops it; its state is saved.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            child.signal(libc::SIGTERM);
            let output = child
                .wait_with_output(Duration::from_secs(15))
                .expect("the watcher stops on SIGTERM");
            assert!(output.status.success(), "watcher exit: {}", output.status);
        }
    }

    /// Start again on the same port and state.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }
}

/// One finished obsctl run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout of a run that must have succeeded.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "obsctl failed: {self:#?}");
        assert!(self.stderr.is_empty(), "nothing on stderr: {self:#?}");
        &self.stdout
    }

    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|error| panic!("not the expected JSON ({error}): {self:#?}"))
    }

    /// The one line on stderr of a run that must have failed with `code`.
    pub fn failure(&self, code: i32) -> &str {
        assert_eq!(self.code, Some(code), "{self:#?}");
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        self.stderr.trim_end()
    }
}

pub fn obsctl_path() -> &'static str {
    env!("CARGO_BIN_EXE_obsctl")
}

/// A command for obsctl with none of the caller's OBS_* or NO_COLOR settings.
pub fn obsctl_command(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(obsctl_path());
    command
        .args(args)
        .env_remove("OBS_WATCHER_URL")
        .env_remove("OBS_CURATOR_URL")
        .env_remove("OBS_PLANNER_URL")
        .env_remove("OBS_SYNTHESIZER_URL")
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env_remove("OBS_API_TOKEN")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `obsctl --watcher-url <url> <args>` to completion.
pub async fn obsctl(url: &str, args: &[&str]) -> Run {
    obsctl_env(url, args, &[]).await
}

pub async fn obsctl_env(url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["--watcher-url", url];
    all.extend_from_slice(args);
    run(obsctl_command(&all).envs(env.iter().copied())).await
}

pub async fn run(command: &mut tokio::process::Command) -> Run {
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("obsctl did not finish within {RUN_LIMIT:?}: {command:?}"))
        .expect("obsctl runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Poll an obsctl command until its stdout satisfies `check`; on timeout, fail showing the
/// last run and the watcher's log.
pub async fn until_output(
    watcher: &Watcher,
    args: &[&str],
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let run = obsctl(&watcher.url, args).await;
        if run.code == Some(0) && check(&run.stdout) {
            return run.stdout;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; last run: {run:#?}\nwatcher log:\n{}",
            watcher.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
