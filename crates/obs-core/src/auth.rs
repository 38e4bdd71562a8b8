//! API_TOKEN: the bearer token that guards whatever changes state.
//!
//! The request middleware checks every request whose method may change state (anything but
//! GET, HEAD and OPTIONS). A handler that changes state on a GET too (the watcher's cron-friendly
//! `GET /ping/{service}`) takes [`StateChanging`], so the same check guards it.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The token a role was configured with, if any.
#[derive(Clone, Default)]
pub(crate) struct ApiToken(pub Option<Arc<str>>);

impl ApiToken {
    /// Whether `headers` carry the token (always, with no token configured).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.0 else {
            return true;
        };
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        bool::from(presented.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// Methods that only read: the middleware lets them through without the token.
pub(crate) fn is_read_only(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// An extractor for handlers that change state whatever the method: with API_TOKEN set, the
/// request needs `Authorization: Bearer <token>`, or it gets 401 before the handler runs.
pub struct StateChanging;

impl FromRequest for StateChanging {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let admitted = request
            .app_data::<ApiToken>()
            .is_none_or(|token| token.admits(request.headers()));
        ready(if admitted {
            Ok(StateChanging)
        } else {
            Err(ApiError::Unauthorized)
        })
    }
}
