//! HTTP to the roles, in one place: base URLs, the bearer token, timeouts, and turning every
//! way a request can fail into one [`ClientError`] that reads as one line.
//!
//! [`ApiClient`] is role-agnostic; each role gets a small typed wrapper ([`watcher`],
//! [`curator`], [`planner`], [`synthesizer`]) with its own URL.

pub mod curator;
mod dead_letters;
pub mod planner;
pub mod synthesizer;
pub mod watcher;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use curator::CuratorClient;
pub use planner::PlannerClient;
pub use synthesizer::SynthesizerClient;
pub use watcher::WatcherClient;

/// Why a request to a role did not give us what we asked for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{role} at {url} is unreachable ({cause}); is it running? (--{role}-url or OBS_{upper}_URL)", upper = role.to_uppercase())]
    Unreachable {
        role: &'static str,
        url: String,
        cause: String,
    },
    #[error("{role} at {url} did not answer within {}s", timeout.as_secs_f64())]
    Timeout {
        role: &'static str,
        url: String,
        timeout: Duration,
    },
    /// The role answered with an error status; `code`/`message` come from its JSON error body.
    #[error("{role} refused {what} ({} {code}){}{message}{hint}", status.as_u16(), if message.is_empty() { "" } else { ": " }, hint = self.hint())]
    Refused {
        role: &'static str,
        what: String,
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("{role} sent an answer obsctl cannot read for {what}: {cause}")]
    Unreadable {
        role: &'static str,
        what: String,
        cause: String,
    },
}

impl ClientError {
    /// What the user can do about it, when that is not already obvious.
    fn hint(&self) -> &'static str {
        match self {
            ClientError::Refused {
                status: StatusCode::UNAUTHORIZED,
                ..
            } => " (pass --token or set OBS_API_TOKEN)",
            _ => "",
        }
    }

    /// The same without naming the role and its URL, for a screen that already shows them.
    pub fn short(&self) -> String {
        match self {
            ClientError::Unreachable { cause, .. } => cause.clone(),
            ClientError::Timeout { timeout, .. } => {
                format!("no answer within {}s", timeout.as_secs_f64())
            }
            ClientError::Refused {
                what,
                status,
                code,
                message,
                ..
            } => format!("{what} ({} {code}): {message}", status.as_u16()),
            ClientError::Unreadable { what, cause, .. } => {
                format!("unreadable answer to {what}: {cause}")
            }
        }
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. } | ClientError::Timeout { .. }
        )
    }
}

/// One role's HTTP API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    role: &'static str,
    base: Url,
    token: Option<String>,
    timeout: Duration,
}

impl ApiClient {
    /// `base` ends with `/` (the command line makes sure), so paths join under any prefix.
    pub fn new(
        role: &'static str,
        base: Url,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("obsctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ClientError::Unreachable {
                role,
                url: base.to_string(),
                cause: format!("cannot set up HTTP: {error}"),
            })?;
        Ok(ApiClient {
            http,
            role,
            base,
            token,
            timeout,
        })
    }

    pub fn role(&self) -> &'static str {
        self.role
    }

    /// The base URL without the trailing slash, as people write it.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// GET `path` (segments) with `query` and decode the JSON answer.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let (what, request) = self.request(Method::GET, path);
        let response = self.send(&what, request.query(query)).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.transport_error(&what, error))?;
        serde_json::from_slice(&bytes).map_err(|error| self.unreadable(&what, error))
    }

    /// POST `body` as JSON to `path` with `query` (and the token, if any); the answer as JSON, or Null
    /// when the role sent none.
    pub async fn post<B: Serialize + ?Sized>(
        &self,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<serde_json::Value, ClientError> {
        self.change(Method::POST, path, query, body).await
    }

    /// POST `body` as JSON and decode the answer as `T`.
    pub async fn post_for<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &[&str],
        body: &B,
    ) -> Result<T, ClientError> {
        self.change(Method::POST, path, &[], Some(body)).await
    }

    /// DELETE `path` and decode the answer as `T`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &[&str]) -> Result<T, ClientError> {
        self.change::<(), T>(Method::DELETE, path, &[], None).await
    }

    /// GET `path` and return the body as text, whatever its type (a report in Markdown or
    /// HTML).
    pub async fn get_text(
        &self,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<String, ClientError> {
        let (what, request) = self.request(Method::GET, path);
        let response = self.send(&what, request.query(query)).await?;
        response
            .text()
            .await
            .map_err(|error| self.transport_error(&what, error))
    }

    /// A request with an optional JSON body; an empty answer reads as JSON `null`.
    async fn change<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let (what, request) = self.request(method, path);
        let mut request = request.query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.send(&what, request).await?;
        let text = response
            .text()
            .await
            .map_err(|error| self.transport_error(&what, error))?;
        let text = if text.trim().is_empty() {
            "null"
        } else {
            &text
        };
        serde_json::from_str(text).map_err(|error| self.unreadable(&what, error))
    }

    /// `path` is a list of segments under the base URL (a prefix in the base is kept); each
    /// is percent-encoded, so a service called `a/b` stays one segment.
    ///
    /// Returns what the request is, for messages (`GET /status`), and the request.
    fn request(&self, method: Method, path: &[&str]) -> (String, RequestBuilder) {
        let mut url = self.base.clone();
        // Only URLs like `mailto:` have no path segments; the command line accepts http(s) only.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        let what = format!("{method} {}", url.path());
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        (what, request)
    }

    /// Send, and turn an error status into [`ClientError::Refused`] with the role's own words.
    async fn send(
        &self,
        what: &str,
        request: RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|error| self.transport_error(what, error))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let (code, message) = error_body(&body, status);
        Err(ClientError::Refused {
            role: self.role,
            what: what.to_string(),
            status,
            code,
            message,
        })
    }

    fn transport_error(&self, what: &str, error: reqwest::Error) -> ClientError {
        let url = self.base_url().to_string();
        if error.is_timeout() {
            ClientError::Timeout {
                role: self.role,
                url,
                timeout: self.timeout,
            }
        } else if error.is_decode() || error.is_body() {
            self.unreadable(what, error)
        } else {
            ClientError::Unreachable {
                role: self.role,
                url,
                cause: root_cause(&error),
            }
        }
    }

    fn unreadable(&self, what: &str, error: impl std::fmt::Display) -> ClientError {
        ClientError::Unreadable {
            role: self.role,
            what: what.to_string(),
            cause: error.to_string(),
        }
    }
}

/// The roles answer errors as `{"error": code, "message": text}`; anything else (a proxy's
/// HTML page) is summarised rather than dumped.
fn error_body(body: &str, status: StatusCode) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(parsed) => (parsed.error, parsed.message),
        Err(_) => {
            let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
            let first_line = body.lines().next().unwrap_or("").trim();
            let excerpt: String = first_line.chars().take(120).collect();
            (reason.replace(' ', "_"), excerpt)
        }
    }
}

/// The innermost cause, lower-cased like the rest of the line: "connection refused", "dns
/// error: …". reqwest's own top line ("error sending request for url …") says nothing new.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
            std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
            _ => {}
        }
    }
    let text = cause.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_code_and_message() {
        let (code, message) = error_body(
            r#"{"error":"invalid_field","message":"service: must not be empty"}"#,
            StatusCode::BAD_REQUEST,
        );
        assert_eq!(code, "invalid_field");
        assert_eq!(message, "service: must not be empty");

        let (code, message) = error_body("<html>bad gateway</html>\nmore", StatusCode::BAD_GATEWAY);
        assert_eq!(code, "bad_gateway");
        assert_eq!(message, "<html>bad gateway</html>");
    }

    #[test]
    fn an_unauthorized_answer_says_how_to_pass_the_token() {
        let error = ClientError::Refused {
            role: "watcher",
            what: "POST /heartbeat".into(),
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized".into(),
            message: "missing or wrong bearer token".into(),
        };
        assert_eq!(
            error.to_string(),
            "watcher refused POST /heartbeat (401 unauthorized): missing or wrong bearer token (pass --token or set OBS_API_TOKEN)"
        );
    }

    #[test]
    fn unreachable_names_the_flag_and_variable() {
        let error = ClientError::Unreachable {
            role: "watcher",
            url: "http://127.0.0.1:1".into(),
            cause: "connection refused".into(),
        };
        assert_eq!(
            error.to_string(),
            "watcher at http://127.0.0.1:1 is unreachable (connection refused); is it running? (--watcher-url or OBS_WATCHER_URL)"
        );
    }
}
