//! The planner role (scaffold while it is built).
pub mod render;
pub mod rules;

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
