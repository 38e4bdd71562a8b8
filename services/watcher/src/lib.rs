//! The watcher role. What is happening? Heartbeats, events, container lifecycle and HTTP probes, turned into issues.
//!
//! Its domain endpoints arrive with their own issues; today it keeps the obs-core contract
//! (probes, metrics, docs, errors, logs, drain, heartbeats) on its own port.

use obs_core::actix_web::web;
use obs_core::{Role, Service};

pub const NAME: &str = "watcher";
pub const DEFAULT_PORT: u16 = 8001;

pub struct Watcher;

impl Watcher {
    pub async fn new(_service: &Service) -> anyhow::Result<Self> {
        Ok(Watcher)
    }
}

impl Role for Watcher {
    fn routes(&self, _cfg: &mut web::ServiceConfig) {}
}
