//! Logs: JSON lines by default, text for humans (LOG_FORMAT=text).
//!
//! Every line a role writes is inside its role span (`role`, `trace_id`), and every line
//! written while handling a request carries that request's `request_id` as a top-level field.
//!
//! Both are paid for by the lines that are written, not by every request, because almost no
//! request logs anything:
//! - the request id is not a span of its own (the fmt layer formats a span's fields when it
//!   opens); the middleware marks the request in a thread-local while it polls the handler,
//!   and the event formatter adds the id to the lines written meanwhile, minting a ULID at the
//!   first line when the caller sent no `X-Request-Id`;
//! - the role span is entered once per HTTP worker thread, which serves one role for life,
//!   rather than around every poll.

use std::cell::{Cell, RefCell};

use actix_web::http::header::HeaderValue;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, CoreConfig, LogFormat};

/// Install the process-wide subscriber. A second call (obs-stack, tests) is a no-op.
pub fn init(config: &CoreConfig) -> Result<(), ConfigError> {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    install(config, std::io::stderr, terminal)
}

/// As [`init`], writing to `writer` (tests pass a sink to keep output quiet), never in colour.
pub fn init_with_writer<W>(config: &CoreConfig, writer: W) -> Result<(), ConfigError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    install(config, writer, false)
}

/// `terminal`: whether `writer` is a terminal, where text lines may be coloured.
fn install<W>(config: &CoreConfig, writer: W, terminal: bool) -> Result<(), ConfigError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // actix's own start/stop chatter is noise at info; a full RUST_LOG directive overrides it.
    let directives = if config.log_level.contains('=') || config.log_level.contains(',') {
        config.log_level.clone()
    } else {
        format!("{},actix_server=warn", config.log_level)
    };
    let filter = EnvFilter::try_new(&directives).map_err(|error| {
        ConfigError::new(format!(
            "LOG_LEVEL: '{}' is not a level or RUST_LOG directive: {error}",
            config.log_level
        ))
    })?;
    // Colour only for a person at a terminal: escape codes in a file or a pipe are noise.
    // The layer's setting covers span fields (formatted when a span opens), the format's the
    // line itself; both must agree.
    let ansi = config.log_format == LogFormat::Text && terminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    // Ignoring the error is deliberate: it only says a subscriber is already installed.
    let _ = match config.log_format {
        LogFormat::Json => builder
            .json()
            .event_format(WithRequestId {
                inner: tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true),
                json: true,
            })
            .try_init(),
        LogFormat::Text => builder
            .event_format(WithRequestId {
                inner: tracing_subscriber::fmt::format()
                    .with_target(false)
                    .with_ansi(ansi),
                json: false,
            })
            .try_init(),
    };
    Ok(())
}

/// The span every line of a role is written in. A span's level only decides whether it is
/// enabled: at ERROR it is on at every LOG_LEVEL, so even `LOG_LEVEL=warn` lines name the role.
pub fn role_span(config: &CoreConfig) -> tracing::Span {
    tracing::error_span!("role", role = %config.role, trace_id = %config.trace_id)
}

/// The longest caller's `X-Request-Id` reused; a longer one is treated as absent.
pub(crate) const MAX_REQUEST_ID: usize = 64;

/// The id of one request in the logs.
#[derive(Clone)]
pub(crate) enum RequestId {
    /// The caller's `X-Request-Id`: 1 to [`MAX_REQUEST_ID`] printable ASCII characters.
    Caller(HeaderValue),
    /// A ULID minted here. Request ids need to be unique, not unguessable: a fast generator
    /// will do.
    Minted(ulid::Ulid),
}

impl RequestId {
    /// The caller's id, if it is one we can log and return as it is.
    pub fn from_caller(header: &HeaderValue) -> Option<Self> {
        let bytes = header.as_bytes();
        let usable = !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes.iter().all(u8::is_ascii_graphic);
        usable.then(|| RequestId::Caller(header.clone()))
    }

    fn mint() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        RequestId::Minted(ulid::Ulid::from_parts(now, fastrand::u128(..)))
    }

    /// `f` of the id as text.
    fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            // Only printable ASCII gets in (see `from_caller`).
            RequestId::Caller(header) => f(header.to_str().unwrap_or("")),
            RequestId::Minted(ulid) => {
                let mut text = [0; ulid::ULID_LEN];
                f(ulid.array_to_str(&mut text))
            }
        }
    }

    /// The id as a response header.
    pub fn into_header(self) -> Option<HeaderValue> {
        match self {
            RequestId::Caller(header) => Some(header),
            RequestId::Minted(ulid) => {
                let mut text = [0; ulid::ULID_LEN];
                HeaderValue::from_str(ulid.array_to_str(&mut text)).ok()
            }
        }
    }
}

thread_local! {
    /// `Some` while a request's handler is polled on this thread, with its id once it has one.
    static REQUEST: Cell<Option<Option<RequestId>>> = const { Cell::new(None) };
    /// The role span of a worker thread, entered for the thread's whole life.
    static ROLE_SPAN: RefCell<Option<tracing::span::EnteredSpan>> = const { RefCell::new(None) };
}

/// Run `f` inside the request whose id is `id`: the caller's, or `None` until a line is
/// written. The first line written mints a ULID, which is left in `id` for the response.
///
/// Most requests write no line, so most never pay for an id.
pub(crate) fn in_request<R>(id: &mut Option<RequestId>, f: impl FnOnce() -> R) -> R {
    struct Restore<'a> {
        outer: Option<Option<RequestId>>,
        id: &'a mut Option<RequestId>,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            if let Some(inner) = REQUEST.replace(self.outer.take()) {
                *self.id = inner;
            }
        }
    }
    let outer = REQUEST.replace(Some(id.take()));
    let _restore = Restore { outer, id };
    f()
}

/// `f` of the id of the request being handled on this thread (minted now if it has none
/// yet), or of `None` outside a request.
fn with_current_request_id<R>(f: impl FnOnce(Option<&str>) -> R) -> R {
    let Some(id) = REQUEST.take() else {
        return f(None);
    };
    let id = id.unwrap_or_else(RequestId::mint);
    let result = id.with_text(|text| f(Some(text)));
    REQUEST.set(Some(Some(id)));
    result
}

/// Enter `span` on this thread until the thread ends, unless a span was entered that way
/// already. An HTTP worker thread serves one role for its whole life, so every line it writes
/// belongs to that role; entering the span once is what entering it per request did, without
/// the per-request cost.
pub(crate) fn enter_for_thread(span: &tracing::Span) {
    ROLE_SPAN.with_borrow_mut(|entered| {
        if entered.is_none() {
            *entered = Some(span.clone().entered());
        }
    });
}

/// The event format of the role (`inner`), with `request_id` added to lines written inside a
/// request: the first field of a JSON line, the last of a text line.
struct WithRequestId<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        with_current_request_id(|id| {
            let Some(id) = id else {
                return self.inner.format_event(ctx, writer, event);
            };
            let mut line = String::with_capacity(256);
            self.inner
                .format_event(ctx, Writer::new(&mut line), event)?;
            if self.json {
                let Some(rest) = line.strip_prefix('{') else {
                    return writer.write_str(&line);
                };
                // The id is printable ASCII, but may hold `"` or `\`.
                let quoted = serde_json::to_string(id).map_err(|_| std::fmt::Error)?;
                write!(writer, "{{\"request_id\":{quoted},{rest}")
            } else {
                let body = line.strip_suffix('\n').unwrap_or(&line);
                writeln!(writer, "{body} request_id={id}")
            }
        })
    }
}
