//! The synthesizer's API: the report on what the others know.

use super::{ApiClient, ClientError};
use crate::cli::ReportFormat;

#[derive(Debug, Clone)]
pub struct SynthesizerClient {
    api: ApiClient,
}

impl SynthesizerClient {
    pub fn new(api: ApiClient) -> Self {
        SynthesizerClient { api }
    }

    /// The role's API as such (what every role serves alike: dead letters).
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// The report as the synthesizer writes it, in `format`, unchanged.
    pub async fn report(&self, format: ReportFormat) -> Result<String, ClientError> {
        let query = [("format", format.query_value().to_string())];
        self.api.get_text(&["v1", "report"], &query).await
    }
}
