//! Logs: JSON lines by default, text for humans (LOG_FORMAT=text).
//!
//! Every line a role writes is inside its role span (`role`, `trace_id`), and every line
//! written while handling a request is inside a request span (`request_id`) below it.

use tracing_subscriber::fmt::MakeWriter;
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
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    Ok(())
}

/// The span every line of a role is written in.
pub fn role_span(config: &CoreConfig) -> tracing::Span {
    tracing::info_span!("role", role = %config.role, trace_id = %config.trace_id)
}
