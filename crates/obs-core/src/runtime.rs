//! The whole `main` of a role binary, so each main is one call:
//! `obs_core::run_role("watcher", 8001, watcher::Watcher::new)`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::{ConfigError, CoreConfig, Listen};
use crate::server::{shutdown_signal, Role, Service};

/// Run one role until SIGTERM/SIGINT. Exit codes: 0 after a clean stop, 2 for bad
/// configuration, 1 for anything else — each with one line on stderr.
///
/// `healthcheck` as the first argument asks the running role on this machine instead
/// (the container HEALTHCHECK), exiting 0 when `/healthz` answers 200.
pub fn run_role<F, R>(role: &'static str, listen: impl Into<Listen>, make_role: F) -> !
where
    F: AsyncFnOnce(&Service) -> anyhow::Result<R>,
    R: Role,
{
    let listen = listen.into();
    let about = format!(
        "the obs-fleet {role} role.\n\nUsage: {role} [healthcheck | --recover]\n\n\
         --recover  rebuild a damaged embedded database (STATE_DIR/{role}.db) from what is\n\
         \x20          intact, keep the damaged files aside, and say what it kept\n\n\
         Configured by environment variables (PORT, METRICS_PORT, LOG_FORMAT, ...);\n\
         see the README. Serves /healthz, /readyz, /metrics and /docs."
    );
    match command_line(role, &about, true) {
        Invocation::Healthcheck => std::process::exit(healthcheck(role, listen)),
        Invocation::Recover => std::process::exit(recover(role, listen)),
        Invocation::Serve => {}
    }
    let config = CoreConfig::from_env(role, listen).unwrap_or_else(|error| error.exit());
    crate::telemetry::init(&config).unwrap_or_else(|error| error.exit());
    let result = actix_web::rt::System::new().block_on(async move {
        let service = Service::new(config)?;
        let role = make_role(&service).await?;
        let app = service.bind(role).await?;
        app.run_until(shutdown_signal()).await
    });
    exit_with(role, result)
}

/// What a server binary was asked to do.
pub enum Invocation {
    Serve,
    /// `healthcheck`: ask the role running on this machine instead.
    Healthcheck,
    /// `--recover`: rebuild a damaged embedded database, then exit.
    Recover,
}

/// The command line every server binary shares: `--help` and `--version` answer and exit 0,
/// anything unknown exits 2, so no flag ever starts a server by accident. `about` follows
/// "<program> <version>: " in the help text.
pub fn command_line(program: &str, about: &str, healthcheck: bool) -> Invocation {
    match std::env::args().nth(1).as_deref() {
        None => Invocation::Serve,
        Some("healthcheck") if healthcheck => Invocation::Healthcheck,
        Some("--recover") if healthcheck => Invocation::Recover,
        Some("--version" | "-V") => {
            println!("{program} {} ({})", crate::VERSION, crate::REVISION);
            std::process::exit(0)
        }
        Some("--help" | "-h") => {
            println!("{program} {}: {about}", crate::VERSION);
            std::process::exit(0)
        }
        Some(other) => {
            eprintln!("{program}: unknown argument '{other}' (try --help)");
            std::process::exit(2)
        }
    }
}

/// One line and the right exit code for how a process ended.
pub fn exit_with(program: &str, result: anyhow::Result<()>) -> ! {
    match result {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            if let Some(config_error) = error.downcast_ref::<ConfigError>() {
                config_error.exit();
            }
            // Plain, not a log line as well: whoever started it reads one line, once.
            if let Some(state) = error.downcast_ref::<crate::db::UnusableState>() {
                eprintln!("{program}: {state}");
                std::process::exit(2)
            }
            eprintln!("{program}: {error:#}");
            std::process::exit(1)
        }
    }
}

/// `--recover`: rebuild the role's SQLite database from what is intact (see
/// [`crate::db::recover_sqlite`]); PostgreSQL has its own tools.
fn recover(role: &str, listen: Listen) -> i32 {
    let config = match CoreConfig::from_env(role, listen) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return 2;
        }
    };
    if config.database_url.is_some() {
        eprintln!(
            "{role}: --recover rebuilds the embedded SQLite database; DATABASE_URL points at \
             PostgreSQL, which its own tools recover"
        );
        return 2;
    }
    let path = config.state_dir.join(format!("{}.db", config.role));
    if !path.exists() {
        eprintln!(
            "{role}: nothing to recover: {} does not exist",
            path.display()
        );
        return 1;
    }
    match crate::db::recover_sqlite(&path) {
        Ok(recovery) => {
            println!("{role}: recovered {}: {recovery}", path.display());
            0
        }
        Err(error) => {
            eprintln!("{role}: could not recover {}: {error:#}", path.display());
            1
        }
    }
}

/// GET /healthz on this machine's PORT with a plain socket: no runtime, no dependencies,
/// fit for a `FROM scratch` image's HEALTHCHECK.
fn healthcheck(role: &str, listen: Listen) -> i32 {
    let port = match CoreConfig::from_env(role, listen) {
        Ok(config) => config.port,
        Err(error) => {
            eprintln!("{error}");
            return 1;
        }
    };
    match probe_healthz(SocketAddr::from(([127, 0, 0, 1], port))) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("healthcheck: {error}");
            1
        }
    }
}

fn probe_healthz(address: SocketAddr) -> std::io::Result<()> {
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    if head.starts_with(b"HTTP/1.") && &head[9..12] == b"200" {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "/healthz answered {}",
            String::from_utf8_lossy(&head)
        )))
    }
}
