//! Dead letters, which every sending role serves the same way (obs-core).

use obs_model::dead_letters::{DeadLetterPage, ReplayRequest, Replayed};

use super::{ApiClient, ClientError};

impl ApiClient {
    /// One page of the role's dead letters, oldest first.
    pub async fn dead_letters(
        &self,
        destination: Option<&str>,
        limit: u32,
        after: Option<i64>,
    ) -> Result<DeadLetterPage, ClientError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(destination) = destination {
            query.push(("destination", destination.to_string()));
        }
        if let Some(after) = after {
            query.push(("after", after.to_string()));
        }
        self.get(&["v1", "dead-letters"], &query).await
    }

    /// Put dead letters back in the role's outbox.
    pub async fn replay_dead_letters(
        &self,
        request: &ReplayRequest,
    ) -> Result<Replayed, ClientError> {
        self.post_for(&["v1", "dead-letters", "replay"], request)
            .await
    }
}
