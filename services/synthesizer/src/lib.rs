//! The synthesizer role. What do we tell people? Status page, reports and webhook notifications.
//!
//! Its domain endpoints arrive with their own issues; today it keeps the obs-core contract
//! (probes, metrics, docs, errors, logs, drain, heartbeats) on its own port.

use obs_core::actix_web::web;
use obs_core::{Role, Service};

pub const NAME: &str = "synthesizer";
pub const DEFAULT_PORT: u16 = 8004;

pub struct Synthesizer;

impl Synthesizer {
    pub async fn new(_service: &Service) -> anyhow::Result<Self> {
        Ok(Synthesizer)
    }
}

impl Role for Synthesizer {
    fn routes(&self, _cfg: &mut web::ServiceConfig) {}
}
