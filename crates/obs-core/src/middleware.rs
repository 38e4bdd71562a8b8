//! The one request middleware every role runs: metrics, request ids and log context, the
//! bearer-token guard, and JSON for the errors actix answers on its own (405).
//!
//! It is on every request's path, so it does a fixed, small amount of work: two clock reads,
//! one counter and one histogram update, the request id (no span: see [`crate::telemetry`]),
//! and no allocation beyond the response header that returns the id.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use actix_web::http::{Method, StatusCode};
use actix_web::{Error, ResponseError};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::metrics::HttpMetrics;
use crate::telemetry::{with_request_id, RequestId};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Route label for anything no route matched: one series however many random paths arrive.
const UNMATCHED: &str = "unmatched";

/// What the middleware needs, shared by all workers of one role.
pub(crate) struct ObserveState {
    pub metrics: Arc<crate::metrics::Metrics>,
    pub api_token: Option<String>,
    /// Requests being handled now, read by the drain on shutdown.
    pub in_flight: Arc<AtomicI64>,
    /// The role's span, entered while a handler runs so every line carries the role.
    pub role_span: tracing::Span,
}

#[derive(Clone)]
pub(crate) struct Observe(pub Arc<ObserveState>);

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = ObserveMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveMiddleware {
            service: Rc::new(service),
            state: self.0.clone(),
        }))
    }
}

pub struct ObserveMiddleware<S> {
    service: Rc<S>,
    state: Arc<ObserveState>,
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for ObserveMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let state = self.state.clone();
        let service = self.service.clone();
        Box::pin(async move {
            let _in_flight = InFlight::enter(&state);
            let (request_id, header) = request_id(&request);
            let method = method_label(request.method());

            let response = if state.is_unauthorized(&request) {
                request.into_response(
                    ApiError::Unauthorized
                        .error_response()
                        .map_into_right_body(),
                )
            } else {
                let handling = service.call(request);
                let mut handling = std::pin::pin!(handling);
                // Lines the handler writes carry the role (its span) and the request id.
                let result = std::future::poll_fn(|cx| {
                    let _role = state.role_span.enter();
                    with_request_id(request_id, || handling.as_mut().poll(cx))
                })
                .await;
                match result {
                    Ok(response) => json_for_bare_errors(response),
                    Err(error) => {
                        // Only a middleware below us can fail this way; the route is unknown.
                        let status = error.as_response_error().status_code();
                        state.metrics.http.record(
                            UNMATCHED,
                            method,
                            status,
                            started.elapsed().as_secs_f64(),
                        );
                        return Err(error);
                    }
                }
            };
            let mut response = response;
            let status = response.status();
            let route = response.request().match_pattern();
            let route = route.as_deref().unwrap_or(UNMATCHED);
            state
                .metrics
                .http
                .record(route, method, status, started.elapsed().as_secs_f64());
            response.headers_mut().insert(REQUEST_ID_HEADER, header);
            // No access line at info: a line per request would cost more than serving it.
            // LOG_LEVEL=debug shows one for each request.
            if status.is_server_error() || tracing::enabled!(tracing::Level::DEBUG) {
                let _role = state.role_span.enter();
                with_request_id(request_id, || {
                    if status.is_server_error() {
                        tracing::warn!(route, method, status = status.as_u16(), "request failed");
                    } else {
                        tracing::debug!(route, method, status = status.as_u16(), "request handled");
                    }
                });
            }
            Ok(response)
        })
    }
}

/// Decrements the in-flight gauges however the request ends, cancellation included.
struct InFlight<'a>(&'a ObserveState);

impl<'a> InFlight<'a> {
    fn enter(state: &'a ObserveState) -> Self {
        state.metrics.http.in_flight.inc();
        state.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.metrics.http.in_flight.dec();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ObserveState {
    /// With API_TOKEN set, anything that may change state needs the bearer token.
    /// Probes and metrics are reads, so they never do.
    fn is_unauthorized(&self, request: &ServiceRequest) -> bool {
        let Some(token) = &self.api_token else {
            return false;
        };
        if matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        ) {
            return false;
        }
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        !bool::from(presented.as_bytes().ct_eq(token.as_bytes()))
    }
}

impl HttpMetrics {
    pub(crate) fn record(&self, route: &str, method: &str, status: StatusCode, seconds: f64) {
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.duration
            .with_label_values(&[route, method])
            .observe(seconds);
    }
}

/// Methods outside the standard set share one label, so they cannot grow the series count.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The caller's `X-Request-Id` when it is short and printable, else a fresh ULID; and the
/// header that returns it.
fn request_id(request: &ServiceRequest) -> (RequestId, HeaderValue) {
    if let Some(header) = request.headers().get(REQUEST_ID_HEADER) {
        if let Some(id) = RequestId::new(header.as_bytes()) {
            return (id, header.clone());
        }
    }
    // Request ids need to be unique, not unguessable: a fast generator will do.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let ulid = ulid::Ulid::from_parts(now, fastrand::u128(..));
    let mut text = [0; ulid::ULID_LEN];
    ulid.array_to_str(&mut text);
    let id = RequestId::new(&text).unwrap_or_else(|| unreachable!("a ULID is printable"));
    let header = HeaderValue::from_bytes(&text).unwrap_or_else(|_| unreachable!("a ULID is ASCII"));
    (id, header)
}

/// actix answers a known path with the wrong method itself, with an empty body; give it ours.
fn json_for_bare_errors<B: MessageBody>(
    response: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B>> {
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response
            .headers()
            .contains_key(actix_web::http::header::CONTENT_TYPE)
    {
        let error = ApiError::MethodNotAllowed {
            method: response.request().method().to_string(),
            path: response.request().path().to_string(),
        };
        let (request, _) = response.into_parts();
        return ServiceResponse::new(request, error.error_response().map_into_right_body());
    }
    response.map_into_left_body()
}
