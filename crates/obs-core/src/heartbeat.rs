//! The heartbeat client: with MONITOR_ENDPOINT set, a role tells the watcher it is alive,
//! every MONITOR_HEARTBEAT_INTERVAL seconds, on its own.
//!
//! A watcher that is absent, restarting or cold-starting is normal, so failures are logged
//! once when they start and once when they end, never every beat.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::CoreConfig;

pub struct HeartbeatClient {
    http: reqwest::Client,
    url: String,
    service: String,
    interval: Duration,
    api_token: Option<String>,
}

impl HeartbeatClient {
    /// None when MONITOR_ENDPOINT is not set.
    pub fn from_config(config: &CoreConfig) -> anyhow::Result<Option<Self>> {
        let Some(endpoint) = &config.monitor_endpoint else {
            return Ok(None);
        };
        let interval = Duration::from_secs(config.monitor_heartbeat_interval);
        Ok(Some(HeartbeatClient {
            http: reqwest::Client::builder()
                .timeout(interval.min(Duration::from_secs(5)))
                .build()?,
            url: format!("{endpoint}/heartbeat"),
            service: config.role.clone(),
            interval,
            api_token: config.api_token.clone(),
        }))
    }

    /// Beat until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            match self.beat().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(url = %crate::redact::url(&self.url), "heartbeats reach the watcher again");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(url = %crate::redact::url(&self.url), error = %error, "heartbeat not delivered; will keep trying");
                }
                Err(_) => {}
            }
        }
    }

    async fn beat(&self) -> anyhow::Result<()> {
        // Three missed beats, not one, before the watcher calls us down.
        let timeout_seconds = self.interval.as_secs() * 3;
        let mut request = self.http.post(&self.url).json(&json!({
            "service": self.service,
            "phase": "running",
            "timeout_seconds": timeout_seconds,
        }));
        if let Some(token) = &self.api_token {
            request = request.bearer_auth(token);
        }
        // Without the URL: reqwest's text names it, and it is logged (shown redacted above).
        let response = request.send().await.map_err(reqwest::Error::without_url)?;
        anyhow::ensure!(
            response.status().is_success(),
            "watcher answered {}",
            response.status()
        );
        Ok(())
    }
}
