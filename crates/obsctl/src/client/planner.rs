//! The planner's API: a plan per incident, with ordered steps and their reasons.

use obs_model::{Plan, PlanList};

use super::{ApiClient, ClientError};
use crate::cli::PlanFilter;

/// The most plans one request asks for (the planner's own ceiling).
const MAX_PLANS: u32 = 10_000;

#[derive(Debug, Clone)]
pub struct PlannerClient {
    api: ApiClient,
}

impl PlannerClient {
    pub fn new(api: ApiClient) -> Self {
        PlannerClient { api }
    }

    /// The role's API as such (what every role serves alike: dead letters).
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// Plans, most urgent first (see [`sort_plans`]).
    pub async fn plans(
        &self,
        filter: PlanFilter,
        service: Option<&str>,
    ) -> Result<Vec<Plan>, ClientError> {
        let mut query = vec![("limit", MAX_PLANS.to_string())];
        if let Some(state) = filter.query_value() {
            query.push(("state", state.to_string()));
        }
        if let Some(service) = service {
            query.push(("service", service.to_string()));
        }
        let mut plans = self
            .api
            .get::<PlanList>(&["v1", "plans"], &query)
            .await?
            .plans;
        sort_plans(&mut plans);
        Ok(plans)
    }

    /// One plan, by its own id or by its incident's.
    pub async fn plan(&self, id: &str) -> Result<Plan, ClientError> {
        self.api.get(&["v1", "plans", id], &[]).await
    }
}

/// Open before closed, then P1 first, then the most recently changed.
pub fn sort_plans(plans: &mut [Plan]) {
    use std::cmp::Reverse;
    plans.sort_by_key(|plan| {
        (
            plan.state == obs_model::PlanState::Closed,
            plan.priority,
            Reverse(plan.updated_at),
        )
    });
}
