//! Logs: JSON lines by default, text for humans (LOG_FORMAT=text).
//!
//! Every line a role writes is inside its role span (`role`, `trace_id`), and every line
//! written while handling a request carries that request's `request_id` as a top-level field.
//!
//! The request id is not a span of its own: a span per request cost more than the rest of the
//! request middleware together (the fmt layer formats a span's fields to JSON when it opens),
//! and almost no request logs anything. The middleware sets the id in a thread-local while it
//! polls the handler, and the event formatter adds it to the lines written meanwhile, so the
//! cost is paid by the lines that are written, not by every request.

use std::cell::Cell;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, CoreConfig, LogFormat};

/// Install the process-wide subscriber. A second call (obs-stack, tests) is a no-op.
pub fn init(config: &CoreConfig) -> Result<(), ConfigError> {
    init_with_writer(config, std::io::stderr)
}

/// As [`init`], writing to `writer` (tests pass a sink to keep output quiet).
pub fn init_with_writer<W>(config: &CoreConfig, writer: W) -> Result<(), ConfigError>
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
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

/// The longest request id kept; a caller's longer `X-Request-Id` is replaced by a fresh one.
pub(crate) const MAX_REQUEST_ID: usize = 64;

/// A request id held inline, so setting it per poll copies bytes and allocates nothing.
#[derive(Clone, Copy)]
pub(crate) struct RequestId {
    len: u8,
    bytes: [u8; MAX_REQUEST_ID],
}

impl RequestId {
    /// `None` unless `id` is 1 to [`MAX_REQUEST_ID`] printable ASCII characters.
    pub fn new(id: &[u8]) -> Option<Self> {
        if id.is_empty() || id.len() > MAX_REQUEST_ID || !id.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut bytes = [0; MAX_REQUEST_ID];
        bytes[..id.len()].copy_from_slice(id);
        Some(RequestId {
            len: id.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn as_str(&self) -> &str {
        // Only printable ASCII gets in (see `new`).
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

thread_local! {
    static REQUEST_ID: Cell<Option<RequestId>> = const { Cell::new(None) };
}

/// Run `f` with `id` as the request id of every line it logs on this thread.
pub(crate) fn with_request_id<R>(id: RequestId, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<RequestId>);
    impl Drop for Restore {
        fn drop(&mut self) {
            REQUEST_ID.set(self.0);
        }
    }
    let _restore = Restore(REQUEST_ID.replace(Some(id)));
    f()
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
        let Some(id) = REQUEST_ID.get() else {
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
            let quoted = serde_json::to_string(id.as_str()).map_err(|_| std::fmt::Error)?;
            write!(writer, "{{\"request_id\":{quoted},{rest}")
        } else {
            let body = line.strip_suffix('\n').unwrap_or(&line);
            writeln!(writer, "{body} request_id={}", id.as_str())
        }
    }
}
