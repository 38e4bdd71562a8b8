//! The curator role. What matters? Deduplicates and groups issues into incidents, with lifecycle, silences and goals.
//!
//! Its domain endpoints arrive with their own issues; today it keeps the obs-core contract
//! (probes, metrics, docs, errors, logs, drain, heartbeats) on its own port.

use obs_core::actix_web::web;
use obs_core::{Role, Service};

pub const NAME: &str = "curator";
pub const DEFAULT_PORT: u16 = 8002;

pub struct Curator;

impl Curator {
    pub async fn new(_service: &Service) -> anyhow::Result<Self> {
        Ok(Curator)
    }
}

impl Role for Curator {
    fn routes(&self, _cfg: &mut web::ServiceConfig) {}
}
