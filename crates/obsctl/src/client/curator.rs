//! The curator's API: incidents, their lifecycle by hand, silences.

use obs_model::{Incident, IncidentList, Silence, SilenceIn, SilenceList};
use serde::{Deserialize, Serialize};

use super::{ApiClient, ClientError};
use crate::cli::IncidentFilter;

/// The most incidents one request asks for (the curator's own ceiling).
const MAX_INCIDENTS: u32 = 10_000;

/// Who acted by hand, and why: the body of `/ack` and `/resolve`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ByHand {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CuratorClient {
    api: ApiClient,
}

impl CuratorClient {
    pub fn new(api: ApiClient) -> Self {
        CuratorClient { api }
    }

    /// The role's API as such (what every role serves alike: dead letters).
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    pub fn base_url(&self) -> &str {
        self.api.base_url()
    }

    /// Incidents, worst first (see [`sort_incidents`]). `active` is not a state the curator
    /// knows: it is every incident but the resolved ones, filtered here.
    pub async fn incidents(
        &self,
        filter: IncidentFilter,
        service: Option<&str>,
        severity: Option<obs_model::Severity>,
    ) -> Result<Vec<Incident>, ClientError> {
        let mut query = vec![("limit", MAX_INCIDENTS.to_string())];
        if let Some(state) = filter.query_value() {
            query.push(("state", state.to_string()));
        }
        if let Some(service) = service {
            query.push(("service", service.to_string()));
        }
        if let Some(severity) = severity {
            query.push(("severity", severity.as_str().to_string()));
        }
        let mut incidents = self
            .api
            .get::<IncidentList>(&["v1", "incidents"], &query)
            .await?
            .incidents;
        if filter == IncidentFilter::Active {
            incidents.retain(|incident| incident.state.is_active());
        }
        sort_incidents(&mut incidents);
        Ok(incidents)
    }

    pub async fn incident(&self, id: &str) -> Result<Incident, ClientError> {
        self.api.get(&["v1", "incidents", id], &[]).await
    }

    /// The incident as it is after acknowledging it.
    pub async fn acknowledge(&self, id: &str, by_hand: &ByHand) -> Result<Incident, ClientError> {
        self.change(id, "ack", by_hand).await
    }

    /// The incident as it is after resolving it.
    pub async fn resolve(&self, id: &str, by_hand: &ByHand) -> Result<Incident, ClientError> {
        self.change(id, "resolve", by_hand).await
    }

    async fn change(
        &self,
        id: &str,
        verb: &str,
        by_hand: &ByHand,
    ) -> Result<Incident, ClientError> {
        self.api
            .post_for(&["v1", "incidents", id, verb], by_hand)
            .await
    }

    pub async fn silences(&self) -> Result<Vec<Silence>, ClientError> {
        Ok(self
            .api
            .get::<SilenceList>(&["v1", "silences"], &[])
            .await?
            .silences)
    }

    pub async fn add_silence(&self, silence: &SilenceIn) -> Result<Silence, ClientError> {
        self.api.post_for(&["v1", "silences"], silence).await
    }

    /// The silence as it was when it was deleted.
    pub async fn delete_silence(&self, id: &str) -> Result<Silence, ClientError> {
        self.api.delete(&["v1", "silences", id]).await
    }
}

/// Worst first: the active before the resolved, then by severity, then open before
/// acknowledged (nobody is on it yet), then the most recently seen.
pub fn sort_incidents(incidents: &mut [Incident]) {
    use obs_model::IncidentState::{Acknowledged, Open, Resolved};
    use std::cmp::Reverse;
    incidents.sort_by_key(|incident| {
        let rank = match incident.state {
            Open => 0,
            Acknowledged => 1,
            Resolved => 2,
        };
        (
            rank == 2,
            Reverse(incident.severity),
            rank,
            Reverse(incident.last_seen),
        )
    });
}
