//! The planner role. What should we do? Remediation plans from rules, with optional safe auto-remediation.
//!
//! Its domain endpoints arrive with their own issues; today it keeps the obs-core contract
//! (probes, metrics, docs, errors, logs, drain, heartbeats) on its own port.

use obs_core::actix_web::web;
use obs_core::{Role, Service};

pub const NAME: &str = "planner";
pub const DEFAULT_PORT: u16 = 8003;

pub struct Planner;

impl Planner {
    pub async fn new(_service: &Service) -> anyhow::Result<Self> {
        Ok(Planner)
    }
}

impl Role for Planner {
    fn routes(&self, _cfg: &mut web::ServiceConfig) {}
}
