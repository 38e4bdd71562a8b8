//! The one request middleware every role runs: metrics, request ids and log context, the
//! bearer-token guard, the deadline of a request body (CLIENT_BODY_TIMEOUT), and JSON for the
//! errors actix answers on its own (405, payload errors of its extractors).
//!
//! It is on every request's path, so it does a fixed, small amount of work: two clock reads,
//! one counter and one histogram update through the worker's [`SeriesCache`], the in-flight
//! gauge, one allocation for the deadline of a request that has a body (its timer is armed
//! only if the body is not all there when it is read), and nothing for logs until a line is
//! written (see [`crate::telemetry`]).

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::ready;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderName, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{Error, HttpMessage as _, ResponseError};
use prometheus::IntGauge;

use crate::auth::{is_read_only, ApiToken};
use crate::error::{ApiError, BodyTimedOut};
use crate::series::SeriesCache;
use crate::telemetry::{enter_for_thread, in_request, RequestId};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// What the middleware needs, shared by all workers of one role.
pub(crate) struct ObserveState {
    pub metrics: Arc<crate::metrics::Metrics>,
    pub api_token: ApiToken,
    /// The role's span: every line a worker writes carries the role.
    pub role_span: tracing::Span,
    /// CLIENT_BODY_TIMEOUT: a request body must have arrived this long after its headers.
    pub body_timeout: Duration,
}

impl ObserveState {
    /// Requests being handled now (the drain on shutdown waits for none).
    pub fn in_flight(&self) -> IntGauge {
        self.metrics.http.in_flight.clone()
    }
}

#[derive(Clone)]
pub(crate) struct Observe(pub Arc<ObserveState>);

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = ObserveMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    /// Called once per worker, on the worker's thread.
    fn new_transform(&self, service: S) -> Self::Future {
        enter_for_thread(&self.0.role_span);
        ready(Ok(ObserveMiddleware {
            service,
            worker: Rc::new(Worker {
                series: SeriesCache::new(self.0.metrics.http.clone()),
                state: self.0.clone(),
            }),
        }))
    }
}

pub struct ObserveMiddleware<S> {
    service: S,
    worker: Rc<Worker>,
}

/// One worker's part: the shared state and the worker's own series cache.
struct Worker {
    state: Arc<ObserveState>,
    series: SeriesCache,
}

impl<S, B> Service<ServiceRequest> for ObserveMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Observed<S::Future>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let in_flight = InFlight::enter(self.worker.clone());
        let method = method_label(request.method());
        head_as_get(&mut request);
        limit_body_time(&mut request, self.worker.state.body_timeout);
        // The caller's id is echoed and logged; without one, an id is minted only if a line
        // is written (there is nothing else to find the response by).
        let mut request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(RequestId::from_caller);
        let handling = if in_flight.0.state.is_unauthorized(&request) {
            let refusal = ApiError::Unauthorized;
            let status = refusal.status_code();
            let seconds = started.elapsed().as_secs_f64();
            in_flight
                .0
                .series
                .record(request.request(), method, status, seconds);
            Handling::Refused {
                error: Some(answer(refusal, request_id.take())),
            }
        } else {
            Handling::Called {
                future: self.service.call(request),
            }
        };
        Observed {
            handling,
            in_flight,
            started,
            method,
            request_id,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request on its way through the middleware: a named future rather than a boxed
    /// `async` block, which saves an allocation per request.
    pub struct Observed<F> {
        #[pin]
        handling: Handling<F>,
        in_flight: InFlight,
        started: Instant,
        method: &'static str,
        request_id: Option<RequestId>,
    }
}

pin_project_lite::pin_project! {
    #[project = HandlingProjection]
    enum Handling<F> {
        /// The service below is handling it.
        Called { #[pin] future: F },
        /// The middleware refused it (401); taken when polled.
        Refused { error: Option<Error> },
    }
}

impl<F, B> Future for Observed<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<B>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let series = &this.in_flight.0.series;
        let method = *this.method;
        let mut response = match this.handling.project() {
            HandlingProjection::Called { future } => {
                match ready!(in_request(this.request_id, || future.poll(cx))) {
                    Ok(response) => response,
                    Err(error) => {
                        // Only a middleware below us can fail this way; the route is unknown.
                        let status = error.as_response_error().status_code();
                        let seconds = this.started.elapsed().as_secs_f64();
                        series.record_unmatched(method, status, seconds);
                        return Poll::Ready(Err(error));
                    }
                }
            }
            HandlingProjection::Refused { error } => match error.take() {
                Some(error) => return Poll::Ready(Err(error)),
                None => panic!("an observed request polled after it completed"),
            },
        };
        let status = response.status();
        let seconds = this.started.elapsed().as_secs_f64();
        series.record(response.request(), method, status, seconds);
        // No access line at info: a line per request would cost more than serving it.
        // LOG_LEVEL=debug shows one for each request.
        if status.is_server_error() || tracing::enabled!(tracing::Level::DEBUG) {
            let route = response.request().match_pattern();
            let route = route.as_deref().unwrap_or(crate::series::UNMATCHED);
            in_request(this.request_id, || {
                if status.is_server_error() {
                    tracing::warn!(route, method, status = status.as_u16(), "request failed");
                } else {
                    tracing::debug!(route, method, status = status.as_u16(), "request handled");
                }
            });
        }
        if let Some(error) = framework_error(&response) {
            return Poll::Ready(Err(answer(error, this.request_id.take())));
        }
        if let Some(header) = this.request_id.take().and_then(RequestId::into_header) {
            response.headers_mut().insert(REQUEST_ID_HEADER, header);
        }
        Poll::Ready(Ok(response))
    }
}

/// An answer of the middleware's own, as an error carrying the whole JSON response: the
/// error path lets the middleware keep the body type of the service below it.
fn answer(error: ApiError, request_id: Option<RequestId>) -> Error {
    let mut response = error.error_response();
    if let Some(header) = request_id.and_then(RequestId::into_header) {
        response.headers_mut().insert(REQUEST_ID_HEADER, header);
    }
    actix_web::error::InternalError::from_response(error, response).into()
}

/// Counts the request in the in-flight gauge until it ends, however it ends (cancellation
/// included).
struct InFlight(Rc<Worker>);

impl InFlight {
    fn enter(worker: Rc<Worker>) -> Self {
        worker.state.metrics.http.in_flight.inc();
        InFlight(worker)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.state.metrics.http.in_flight.dec();
    }
}

impl ObserveState {
    /// With API_TOKEN set, anything whose method may change state needs the bearer token.
    /// Probes and metrics are reads, so they never do.
    fn is_unauthorized(&self, request: &ServiceRequest) -> bool {
        !is_read_only(request.method()) && !self.api_token.admits(request.headers())
    }
}

/// Route a HEAD request as a GET, so every GET route answers HEAD (uptime checkers use it)
/// without each route saying so. The body is not sent: the HTTP/1 codec remembers the method
/// the request came with and writes only the head of a HEAD's response.
pub(crate) fn head_as_get(request: &mut ServiceRequest) {
    if request.method() == Method::HEAD {
        request.head_mut().method = Method::GET;
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

/// An error response that is not ours: actix's own 405 for a known path with the wrong method
/// (no body at all), or the plain-text answer of one of its extractors (`web::Bytes` over the
/// limit, a bad form). The JSON error to answer with instead, with the same status.
fn framework_error<B>(response: &ServiceResponse<B>) -> Option<ApiError> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let content_type = response.headers().get(CONTENT_TYPE);
    let is_json = content_type
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let from_framework = content_type.is_none() || response.response().error().is_some();
    if is_json || !from_framework {
        return None;
    }
    let request = response.request();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return Some(ApiError::MethodNotAllowed {
            method: request.method().to_string(),
            path: request.path().to_string(),
        });
    }
    // The framework's body extractors end on the same deadline as ours: say so the same way.
    let timed_out = response
        .response()
        .error()
        .and_then(|error| error.as_error::<PayloadError>())
        .and_then(crate::error::body_timed_out);
    if let Some(after) = timed_out {
        return Some(ApiError::BodyTimeout {
            seconds: after.as_secs_f64(),
        });
    }
    let message = match response.response().error() {
        Some(error) => error.to_string(),
        None => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string(),
    };
    Some(ApiError::Http { status, message })
}

/// Give a request body CLIENT_BODY_TIMEOUT to arrive: past it, its stream ends with
/// [`BodyTimedOut`], which every body extractor answers 408 (and the connection is closed).
/// A client that sends `Content-Length: 1000` and then 6 bytes holds a worker's attention and
/// a connection only that long. Requests without a body are left as they are.
fn limit_body_time(request: &mut ServiceRequest, timeout: Duration) {
    // Only a chunked body left unread is drained rather than the connection closed.
    let chunked = request.chunked().unwrap_or(false);
    match request.take_payload() {
        Payload::None => {}
        payload => request.set_payload(Payload::Stream {
            payload: Box::pin(BodyDeadline {
                body: Unfinished {
                    payload,
                    hold: chunked,
                },
                deadline: tokio::time::sleep(timeout),
                timeout,
            }),
        }),
    }
}

pin_project_lite::pin_project! {
    /// A request body that ends in an error at its deadline.
    struct BodyDeadline {
        body: Unfinished,
        #[pin]
        deadline: tokio::time::Sleep,
        timeout: Duration,
    }
}

impl futures_util::Stream for BodyDeadline {
    type Item = Result<bytes::Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let payload = &mut this.body.payload;
        if matches!(payload, Payload::None) {
            return Poll::Ready(None);
        }
        match Pin::new(&mut *payload).poll_next(cx) {
            Poll::Ready(None) => {
                // All read: nothing left for actix to drain or to hold.
                *payload = Payload::None;
                return Poll::Ready(None);
            }
            Poll::Ready(item) => return Poll::Ready(item),
            Poll::Pending => {}
        }
        ready!(this.deadline.poll(cx));
        // The body stays unfinished (and held when dropped, see `Unfinished`).
        let timed_out =
            std::io::Error::new(std::io::ErrorKind::TimedOut, BodyTimedOut(*this.timeout));
        Poll::Ready(Some(Err(PayloadError::Io(timed_out))))
    }
}

/// A request body, until it is read to its end. When its reader is gone, actix drains the
/// rest of a chunked body before it closes the connection or reads the next request — from a
/// client that stalled, for ever. While the body is still held when the answer has been
/// written, actix closes the connection instead; so an unfinished chunked body is held on its
/// worker for a moment after it is dropped ([`hold_unfinished`]). (A `Content-Length` body
/// left unread makes actix close the connection anyway.)
struct Unfinished {
    payload: Payload,
    hold: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.hold && !matches!(self.payload, Payload::None) {
            hold_unfinished(std::mem::replace(&mut self.payload, Payload::None));
        }
    }
}

/// How long an unfinished body is held: its answer is written well within it.
const HOLD_UNFINISHED: Duration = Duration::from_secs(2);
/// At most this many held on a worker, the oldest let go first: each holds what actix buffered
/// of it (tens of KiB at most).
const MAX_HELD: usize = 1024;

thread_local! {
    static HELD: std::cell::RefCell<std::collections::VecDeque<(Instant, Payload)>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

/// Hold `body` on this worker, and let go of those held long enough. No task or timer: the
/// list is pruned whenever one more is added.
fn hold_unfinished(body: Payload) {
    let now = Instant::now();
    // During the thread's teardown there is nothing left to hold for.
    let _ = HELD.try_with(|held| {
        let Ok(mut held) = held.try_borrow_mut() else {
            return;
        };
        while held.front().is_some_and(|(since, _)| {
            now.duration_since(*since) > HOLD_UNFINISHED || held.len() >= MAX_HELD
        }) {
            held.pop_front();
        }
        held.push_back((now, body));
    });
}
