//! Helpers for tests that talk to the real thing: roles served on port 0 over real HTTP,
//! the role binaries as child processes, a real Prometheus, and promtool; a receiving
//! server standing in for a downstream role ([`receiver`]); images and containers on the
//! machine's Docker engine ([`docker`]).
//!
//! Missing tools fail loudly: CI installs them (scripts/install-test-deps.sh), and a test
//! that silently skips is a test that cannot fail.

pub mod docker;
pub mod postgres;
pub mod prometheus;
pub mod receiver;

pub use prometheus::{Alertmanager, Prometheus};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use obs_core::{CancellationToken, CoreConfig, Role, Service};

/// A role served in this process on a loopback port chosen by the OS.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub metrics_port: Option<u16>,
    pub client: reqwest::Client,
    stop: CancellationToken,
    finished: Option<tokio::sync::oneshot::Receiver<anyhow::Result<()>>>,
}

impl TestApp {
    /// Bind `make_role` with `config` and serve it until [`TestApp::shutdown`] or drop.
    /// Must run inside an actix system (`#[actix_web::test]`).
    pub async fn spawn<F, R>(config: CoreConfig, make_role: F) -> anyhow::Result<TestApp>
    where
        F: AsyncFnOnce(&Service) -> anyhow::Result<R>,
        R: Role,
    {
        let service = Service::new(config)?;
        let role = make_role(&service).await?;
        let app = service.bind(role).await?;
        Ok(Self::run(app))
    }

    /// Serve an already bound application.
    pub fn run(app: obs_core::Application) -> TestApp {
        let port = app.port();
        let metrics_port = app.metrics_port();
        let stop = CancellationToken::new();
        let (sender, finished) = tokio::sync::oneshot::channel();
        let until = stop.clone().cancelled_owned();
        obs_core::actix_web::rt::spawn(async move {
            let _ = sender.send(app.run_until(until).await);
        });
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            metrics_port,
            client: client(),
            stop,
            finished: Some(finished),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"))
    }

    /// Stop as SIGTERM would, and return how the run ended.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        match self.finished.take() {
            Some(finished) => finished.await.context("the server task vanished")?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A client with a short timeout, so a hung server fails the test instead of the CI run.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain reqwest client builds")
}

/// Config for a role under test: loopback, port 0, state in a fresh temporary folder.
pub fn test_config(role: &str) -> (CoreConfig, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("a temporary folder");
    (CoreConfig::for_tests(role, state.path()), state)
}

/// Poll `check` until it returns Some, or fail after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free loopback port (bound, then released; fine for a test that binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// A workspace binary (`watcher`, `obs-stack`, …) next to the running test executable.
/// `cargo test --workspace --all-targets` builds them all.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build --workspace, or cargo test --workspace --all-targets)",
        path.display()
    );
    path
}

/// A child process that is killed when dropped, so a failing test leaves nothing behind.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn pid(&self) -> i32 {
        self.0.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// Send a signal (SIGTERM, SIGINT, SIGKILL …).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety concerns.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Wait for exit, at most `timeout`; returns the output once it has exited.
    pub fn wait_with_output(mut self, timeout: Duration) -> anyhow::Result<std::process::Output> {
        let mut child = self.0.take().context("already waited")?;
        let deadline = Instant::now() + timeout;
        loop {
            if child.try_wait()?.is_some() {
                return Ok(child.wait_with_output()?);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let output = child.wait_with_output()?;
                bail!(
                    "did not exit within {timeout:?}; stderr: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Find a tool on PATH or fail the test with a line that says how to get it.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run scripts/install-test-deps.sh (make test-deps)")
        })
}

/// `promtool check metrics` on an exposition; Err carries promtool's complaints.
pub fn promtool_check_metrics(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(text.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "promtool check metrics exited {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
