//! JSON errors, the same shape everywhere: `{"error":"<stable_code>","message":"<for a human>"}`.
//!
//! Handlers return [`ApiError`]; JSON bodies come through [`crate::json::Json`], which names the
//! wrong field, and actix's own extractor failures (bad query or path, a stray `web::Json`) are
//! turned into it by the configs in [`extractor_configs`], so a client sees one shape whatever
//! went wrong. The status is decided here and only here.

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input or an invalid field; the message names the field.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// Refused whatever the credentials, for the reason given.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within CLIENT_BODY_TIMEOUT; the connection is closed after it.
    #[error("request body did not arrive within {seconds} s (CLIENT_BODY_TIMEOUT)")]
    BodyTimeout { seconds: f64 },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    /// An error the HTTP framework answered on its own, re-dressed in our shape (see
    /// [`crate::middleware`]); its code follows the status.
    #[error("{message}")]
    Http { status: StatusCode, message: String },
    /// Something failed on our side; the cause chain is logged, the client gets a generic line.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Stable machine-readable code, e.g. `invalid_json`.
    pub error: &'a str,
    /// What was wrong, for a human.
    pub message: String,
}

impl ApiError {
    /// An invalid field: the message says which and why.
    pub fn invalid_field(field: &str, why: impl std::fmt::Display) -> Self {
        ApiError::BadRequest {
            code: "invalid_field",
            message: format!("{field}: {why}"),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::NotFound(what.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BodyTimeout { .. } => "body_timeout",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Http { status, .. } => http_code(*status),
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The stable code of a status the framework answered with.
fn http_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        431 => "headers_too_large",
        500..=599 => "internal",
        _ => "client_error",
    }
}

impl From<anyhow::Error> for ApiError {
    /// A failed commit ([`crate::db::StorageError`]: disk full, database unreachable) is 503:
    /// the transaction was rolled back, so the client may send the same request again.
    fn from(error: anyhow::Error) -> Self {
        match error.downcast::<ApiError>() {
            Ok(api) => api,
            Err(error) => match crate::db::storage_error(&error) {
                Some(storage) => ApiError::Unavailable(format!(
                    "nothing was stored ({storage}); sending the same request again is safe"
                )),
                None => ApiError::Internal(error),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Http { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        // The rest of a late body may still be on its way: the connection cannot be reused.
        if matches!(self, ApiError::BodyTimeout { .. }) {
            response.force_close();
        }
        response.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        })
    }
}

/// Turn actix's JSON body errors into ours, naming the field where serde knows it.
pub fn json_error(error: JsonPayloadError, limit: usize) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
            "expected a JSON body with Content-Type: application/json".into(),
        ),
        JsonPayloadError::Deserialize(cause) => {
            let code = if cause.is_data() {
                "invalid_field"
            } else {
                "invalid_json"
            };
            ApiError::BadRequest {
                code,
                message: format!("request body: {cause}"),
            }
        }
        JsonPayloadError::Payload(cause) => payload_error(cause, limit),
        other => ApiError::BadRequest {
            code: "invalid_json",
            message: format!("request body: {other}"),
        },
    }
}

/// Why a request body could not be read: too large, too slow (see
/// [`crate::middleware`]'s body deadline), badly compressed or cut short.
pub fn payload_error(error: PayloadError, limit: usize) -> ApiError {
    if let Some(after) = body_timed_out(&error) {
        return ApiError::BodyTimeout {
            seconds: after.as_secs_f64(),
        };
    }
    // What gzip, deflate, brotli and zstd decoders fail with; a stream cut short comes back as
    // `Incomplete` with the decoder's error (one cut short on the wire has none).
    let undecodable = |cause: &std::io::Error| {
        matches!(
            cause.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
        )
    };
    match error {
        PayloadError::Overflow => ApiError::PayloadTooLarge { limit },
        PayloadError::EncodingCorrupted => ApiError::BadRequest {
            code: "invalid_encoding",
            message: "request body does not decode as its Content-Encoding says".into(),
        },
        PayloadError::Incomplete(Some(cause)) => ApiError::BadRequest {
            code: "invalid_encoding",
            message: format!("request body does not decode as its Content-Encoding says: {cause}"),
        },
        PayloadError::Io(cause) if undecodable(&cause) => ApiError::BadRequest {
            code: "invalid_encoding",
            message: format!("request body does not decode as its Content-Encoding says: {cause}"),
        },
        other => ApiError::BadRequest {
            code: "invalid_body",
            message: format!("request body could not be read: {other}"),
        },
    }
}

/// After how long the body deadline ended this payload, if that is why it failed.
pub(crate) fn body_timed_out(error: &PayloadError) -> Option<std::time::Duration> {
    match error {
        PayloadError::Io(cause) => cause
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<BodyTimedOut>())
            .map(|timed_out| timed_out.0),
        _ => None,
    }
}

/// The error a request body's stream ends with when CLIENT_BODY_TIMEOUT passes.
#[derive(Debug, thiserror::Error)]
#[error("request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub std::time::Duration);

/// The extractor configs every role app registers, so bad input always answers in JSON.
pub fn extractor_configs(max_body_bytes: usize) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(crate::json::BodyLimit(max_body_bytes))
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body_bytes)
                    .error_handler(move |error, _req: &HttpRequest| {
                        json_error(error, max_body_bytes).into()
                    }),
            )
            .app_data(web::PayloadConfig::default().limit(max_body_bytes))
            .app_data(
                web::QueryConfig::default().error_handler(|error, _req| query_error(error).into()),
            )
            .app_data(
                web::PathConfig::default().error_handler(|error, _req| path_error(error).into()),
            );
    }
}

fn query_error(error: QueryPayloadError) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        message: format!("query string: {error}"),
    }
}

fn path_error(error: PathError) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_path",
        message: format!("path: {error}"),
    }
}
