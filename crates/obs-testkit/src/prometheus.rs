//! A real Prometheus and a real Alertmanager (Debian's packages), each on a loopback port
//! with its own config and storage, killed on drop; their logs are kept for failures.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{client, free_port, tool, ChildGuard};

/// A real Prometheus scraping and evaluating every second.
pub struct Prometheus {
    pub url: String,
    server: Server,
    client: reqwest::Client,
}

/// What Prometheus evaluates besides scraping: rule groups, and where to send alerts.
#[derive(Default)]
pub struct Alerting<'a> {
    /// A rule file's YAML (`groups: …`).
    pub rules: Option<&'a str>,
    /// An Alertmanager's base URL (`http://127.0.0.1:port`).
    pub alertmanager: Option<&'a str>,
}

impl Prometheus {
    /// Start Prometheus with `scrape_configs` (YAML, the list under `scrape_configs:`).
    pub async fn start(scrape_configs: &str) -> anyhow::Result<Prometheus> {
        Self::start_with(scrape_configs, Alerting::default()).await
    }

    /// Start Prometheus with `scrape_configs`, and rules and an Alertmanager to alert.
    pub async fn start_with(
        scrape_configs: &str,
        alerting: Alerting<'_>,
    ) -> anyhow::Result<Prometheus> {
        let dir = tempfile::tempdir()?;
        let mut config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n".to_string();
        if let Some(rules) = alerting.rules {
            let path = dir.path().join("rules.yml");
            std::fs::write(&path, rules)?;
            config.push_str(&format!("rule_files:\n  - {}\n", path.display()));
        }
        if let Some(url) = alerting.alertmanager {
            let address = url.trim_start_matches("http://").trim_end_matches('/');
            config.push_str(&format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{address}']\n"
            ));
        }
        config.push_str(&format!("scrape_configs:\n{scrape_configs}"));
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let port = free_port();
        let mut command = Command::new(tool("prometheus"));
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let server = Server::start("prometheus", command, dir, port).await?;
        Ok(Prometheus {
            url: server.url.clone(),
            server,
            client: client(),
        })
    }

    /// An instant query; returns `data.result`.
    pub async fn query(&self, promql: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let response: serde_json::Value = self
            .client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            response["status"] == "success",
            "query {promql} failed: {response}"
        );
        Ok(response["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// `{label value → sample value}` of an instant query, keyed by `label`.
    pub async fn values_by(
        &self,
        promql: &str,
        label: &str,
    ) -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
        Ok(self
            .query(promql)
            .await?
            .iter()
            .filter_map(|sample| {
                let key = sample["metric"][label].as_str()?.to_string();
                let value = sample["value"][1].as_str()?.parse().ok()?;
                Some((key, value))
            })
            .collect())
    }

    pub async fn targets(&self) -> anyhow::Result<serde_json::Value> {
        self.api("targets").await
    }

    /// `GET /api/v1/<path>` (e.g. `alerts`, `rules`), the whole answer.
    pub async fn api(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self
            .client
            .get(format!("{}/api/v1/{path}", self.url))
            .send()
            .await?
            .json()
            .await?)
    }

    /// Prometheus's log so far, for a failing test's message.
    pub fn log(&self) -> String {
        self.server.log()
    }
}

/// A real Alertmanager (`prometheus-alertmanager`) with `config` (its whole YAML).
pub struct Alertmanager {
    pub url: String,
    server: Server,
}

impl Alertmanager {
    pub async fn start(config: &str) -> anyhow::Result<Alertmanager> {
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config)?;
        let port = free_port();
        let mut command = Command::new(tool("prometheus-alertmanager"));
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip with peers: a lone instance on loopback.
            .arg("--cluster.listen-address=");
        let server = Server::start("alertmanager", command, dir, port).await?;
        Ok(Alertmanager {
            url: server.url.clone(),
            server,
        })
    }

    pub fn log(&self) -> String {
        self.server.log()
    }
}

/// A child process serving HTTP on `127.0.0.1:port`, with its folder and log.
struct Server {
    url: String,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
    log_path: PathBuf,
}

impl Server {
    /// Spawn `command` (stderr kept in a log file) and wait until `/-/ready` answers.
    async fn start(
        name: &str,
        mut command: Command,
        dir: tempfile::TempDir,
        port: u16,
    ) -> anyhow::Result<Server> {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        // Keep its log for failures, without letting a full pipe block it.
        let log_path = dir.path().join(format!("{name}.log"));
        if let Some(stderr) = child.stderr.take() {
            let log_path = log_path.clone();
            std::thread::spawn(move || copy_lines(stderr, &log_path));
        }
        let server = Server {
            url: format!("http://127.0.0.1:{port}"),
            _child: ChildGuard(Some(child)),
            _dir: dir,
            log_path,
        };
        let ready = format!("{}/-/ready", server.url);
        let http = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = http.get(&ready).send().await {
                if response.status().is_success() {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                bail!("{name} not ready after 30 s; log:\n{}", server.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

fn copy_lines(from: impl std::io::Read, to: &Path) {
    let mut log = std::fs::File::create(to).ok();
    for line in BufReader::new(from).lines().map_while(Result::ok) {
        if let Some(log) = &mut log {
            use std::io::Write;
            let _ = writeln!(log, "{line}");
        }
    }
}
