//! The archivist role. What happened? Durable, queryable, exportable history with retention.
//!
//! Its domain endpoints arrive with their own issues; today it keeps the obs-core contract
//! (probes, metrics, docs, errors, logs, drain, heartbeats) on its own port.

use obs_core::actix_web::web;
use obs_core::{Role, Service};

pub const NAME: &str = "archivist";
pub const DEFAULT_PORT: u16 = 8005;

pub struct Archivist;

impl Archivist {
    pub async fn new(_service: &Service) -> anyhow::Result<Self> {
        Ok(Archivist)
    }
}

impl Role for Archivist {
    fn routes(&self, _cfg: &mut web::ServiceConfig) {}
}
