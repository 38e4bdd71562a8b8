//! API_TOKEN: the bearer token that guards whatever changes state, and reads that may expose
//! secrets.
//!
//! The request middleware checks every request whose method may change state (anything but
//! GET, HEAD and OPTIONS). A handler that changes state on a GET too (the watcher's cron-friendly
//! `GET /ping/{service}`) takes [`StateChanging`], so the same check guards it. A read that may
//! expose what is secret (container logs and inspect, archived records) takes
//! [`SensitiveRead`]; an endpoint that acts on the host (a container restart) takes
//! [`ActsOnHost`], which without any API_TOKEN is served on a loopback listener only.

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

/// Whether the role's listener takes connections from loopback only (registered by the server).
#[derive(Clone, Copy)]
pub(crate) struct Listener {
    pub loopback: bool,
}

/// With API_TOKEN set, whether the request carries it (401 if not).
fn token_check(request: &HttpRequest) -> Result<(), ApiError> {
    let admitted = request
        .app_data::<ApiToken>()
        .is_none_or(|token| token.admits(request.headers()));
    if admitted {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// An extractor for handlers that change state whatever the method: with API_TOKEN set, the
/// request needs `Authorization: Bearer <token>`, or it gets 401 before the handler runs.
pub struct StateChanging;

impl FromRequest for StateChanging {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(token_check(request).map(|()| StateChanging))
    }
}

/// An extractor for reads that may expose secrets (container logs and environment, archived
/// records): with API_TOKEN set they need it as a change would.
pub struct SensitiveRead;

impl FromRequest for SensitiveRead {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(token_check(request).map(|()| SensitiveRead))
    }
}

/// An extractor for endpoints that act on the host (restarting a container): with API_TOKEN
/// set they need it; with none, they are served only on a loopback listener (403 otherwise),
/// so a role reachable from the network never lets anyone restart what runs beside it.
pub struct ActsOnHost;

impl FromRequest for ActsOnHost {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let tokenless = request
            .app_data::<ApiToken>()
            .is_none_or(|token| token.0.is_none());
        let loopback = request
            .app_data::<Listener>()
            .is_some_and(|listener| listener.loopback);
        ready(if tokenless && !loopback {
            Err(ApiError::Forbidden(
                "this endpoint acts on the host and is refused on a listener reachable from \
                 the network without API_TOKEN: set API_TOKEN (and send it as a bearer token), \
                 or listen on 127.0.0.1"
                    .into(),
            ))
        } else {
            token_check(request).map(|()| ActsOnHost)
        })
    }
}
