//! Building and running a role: the same for a role binary, `obs-stack` and the tests.
//!
//! ```text
//! let service = Service::new(config)?;          // registry, readiness, config
//! let role = MyRole::new(&service)?;            // registers its metrics, loads its state
//! let app = service.bind(role).await?;          // listeners bound; app.port() is known
//! app.run_until(shutdown_signal()).await?;      // serve; drain and flush on shutdown
//! ```

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{dev::Server, web, App, HttpServer};
use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth::{ApiToken, Listener};
use crate::config::CoreConfig;
use crate::error::ApiError;
use crate::heartbeat::HeartbeatClient;
use crate::metrics::Metrics;
use crate::middleware::{Observe, ObserveState};
use crate::probes::Readiness;

/// What a role adds to the kit: its routes, their description, background work and
/// what it must save before exit.
pub trait Role: Send + Sync + 'static {
    /// Mount the role's own endpoints. Called once per HTTP worker.
    fn routes(&self, cfg: &mut web::ServiceConfig);

    /// The OpenAPI description of [`Role::routes`].
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        utoipa::openapi::OpenApiBuilder::new().build()
    }

    /// Start background work (checkers, watchers, delivery). It must end once `shutdown`
    /// is cancelled. Runs after the listeners are bound, before readiness turns 200.
    fn start(&self, _context: &RoleContext) {}

    /// Save what must survive a restart. Called once, after the HTTP drain.
    fn flush(&self) -> impl Future<Output = anyhow::Result<()>> {
        async { Ok(()) }
    }
}

/// Handed to [`Role::start`].
pub struct RoleContext {
    pub shutdown: CancellationToken,
    /// Spawned work should run inside this span so its lines carry the role.
    pub span: tracing::Span,
}

impl RoleContext {
    /// Spawn `task` in the role's span; it is expected to watch `self.shutdown`.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + 'static,
    {
        actix_web::rt::spawn(task.instrument(self.span.clone()));
    }
}

/// The kit before it is bound: config, metrics registry and readiness for one role.
pub struct Service {
    config: CoreConfig,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    span: tracing::Span,
    /// The role's database once opened: the server serves its dead letters.
    db: std::sync::OnceLock<crate::db::Db>,
}

impl Service {
    pub fn new(config: CoreConfig) -> anyhow::Result<Self> {
        let metrics = Arc::new(
            Metrics::new(&config.metrics_prefix, &config.role)
                .context("registering the HTTP metrics")?,
        );
        Ok(Service {
            span: crate::telemetry::role_span(&config),
            config,
            metrics,
            readiness: Readiness::default(),
            db: std::sync::OnceLock::new(),
        })
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Open the role's database: PostgreSQL when DATABASE_URL is set, else
    /// `STATE_DIR/<role>.db`; the kit's tables and `schema` migrated (see [`crate::db`]).
    pub async fn open_db(&self, schema: crate::db::Schema) -> anyhow::Result<crate::db::Db> {
        let location = crate::db::Location::choose(
            self.config.database_url.as_deref(),
            &self.config.state_dir,
            &self.config.role,
        );
        let unusable = |error: anyhow::Error| {
            anyhow::Error::new(crate::db::UnusableState(format!("{error:#}")))
        };
        let db = crate::db::Db::open(&location, schema)
            .await
            .map_err(unusable)?;
        crate::outbox::import_legacy_queues(&db, &self.config.state_dir, &self.config.role)
            .await
            .map_err(unusable)?;
        // A role opens its database once; a second open (tests) serves the first's letters.
        let _ = self.db.set(db.clone());
        Ok(db)
    }

    /// Where roles register their own metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Bind the listeners (main port, and METRICS_PORT if set) and build the servers.
    pub async fn bind<R: Role>(self, role: R) -> anyhow::Result<Application> {
        let listener = bind_main_listener(&self.config)?;
        self.bind_listener(role, listener).await
    }

    /// As [`Service::bind`], on a listener bound beforehand (obs-stack binds all five
    /// first, so every role knows every other's port before any is built).
    pub async fn bind_listener<R: Role>(
        self,
        role: R,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        let config = self.config;
        let role = Arc::new(role);
        let api_token = ApiToken(config.api_token.as_deref().map(Arc::from));
        let observe = Observe(Arc::new(ObserveState {
            metrics: self.metrics.clone(),
            api_token: api_token.clone(),
            role_span: self.span.clone(),
            body_timeout: config.connections.body_timeout,
        }));
        let in_flight = observe.0.in_flight();
        let serves_dead_letters = self.db.get().is_some();
        let openapi = {
            let role = role.clone();
            let name = config.role.clone();
            Arc::new(crate::docs::LazyOpenApi::new(move || {
                crate::docs::openapi(&name, role.openapi(), serves_dead_letters)
            }))
        };
        let metrics = web::Data::from(self.metrics.clone());
        let readiness = web::Data::new(self.readiness.clone());
        let max_body_bytes = config.max_body_bytes;

        let port = listener.local_addr()?.port();
        let listens_on = Listener {
            loopback: listener.local_addr()?.ip().is_loopback(),
        };

        let app_role = role.clone();
        let dead_letters = self
            .db
            .get()
            .map(|db| crate::dead_letters::routes(db.clone(), config.role.clone()));
        let limits = config.connections;
        let workers = config.workers.unwrap_or_else(default_workers);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(observe.clone())
                .app_data(metrics.clone())
                .app_data(readiness.clone())
                .app_data(api_token.clone())
                .app_data(listens_on)
                .configure(crate::error::extractor_configs(max_body_bytes))
                .configure(crate::probes::routes)
                .configure(crate::docs::routes(openapi.clone()))
                .configure(|cfg| app_role.routes(cfg))
                .configure(|cfg| {
                    if let Some(routes) = &dead_letters {
                        routes(cfg);
                    }
                })
                .default_service(web::to(not_found))
        })
        .shutdown_timeout(config.shutdown_grace_seconds)
        .client_request_timeout(limits.header_timeout)
        .keep_alive(keep_alive(limits.keep_alive))
        .max_connections(connections_per_worker(limits.max_connections, workers))
        .workers(workers)
        .disable_signals()
        .listen(listener)?;
        let server = server.run();

        let (metrics_server, metrics_port) = match config.metrics_port {
            Some(metrics_port) => {
                let (server, port) =
                    metrics_only_server(&config, metrics_port, self.metrics.clone())?;
                (Some(server), Some(port))
            }
            None => (None, None),
        };

        Ok(Application {
            config,
            role,
            server,
            metrics_server,
            port,
            metrics_port,
            in_flight,
            readiness: self.readiness,
            span: self.span,
        })
    }
}

/// actix's default: one worker per core.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// actix caps connections per worker; MAX_CONNECTIONS is for the role, so it is shared out,
/// rounding up (every worker takes at least one).
fn connections_per_worker(max_connections: usize, workers: usize) -> usize {
    max_connections.div_ceil(workers.max(1)).max(1)
}

fn keep_alive(idle: Duration) -> actix_web::http::KeepAlive {
    if idle.is_zero() {
        actix_web::http::KeepAlive::Disabled
    } else {
        actix_web::http::KeepAlive::Timeout(idle)
    }
}

/// The main listener of `config`: HOST:PORT.
pub fn bind_main_listener(config: &CoreConfig) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::new(config.host, config.port);
    TcpListener::bind(address)
        .with_context(|| format!("binding {address} ({})", config.port_variable()))
}

async fn not_found(request: actix_web::HttpRequest) -> actix_web::HttpResponse {
    ApiError::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.path()
    ))
    .into_response()
}

/// The second listener: `/metrics` only, outside the request path of the main port.
fn metrics_only_server(
    config: &CoreConfig,
    port: u16,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(Server, u16)> {
    let address = SocketAddr::new(config.host, port);
    let listener = TcpListener::bind(address)
        .with_context(|| format!("binding {address} ({})", config.metrics_port_variable()))?;
    let port = listener.local_addr()?.port();
    let metrics = web::Data::from(metrics);
    let server = HttpServer::new(move || {
        App::new()
            .wrap_fn(|mut request, service| {
                crate::middleware::head_as_get(&mut request);
                actix_web::dev::Service::call(service, request)
            })
            .app_data(metrics.clone())
            .service(web::resource("/metrics").route(web::get().to(crate::probes::metrics)))
            .default_service(web::to(not_found))
    })
    .workers(1)
    // The same limits as the main port: a scraper that stalls cannot hold it either.
    .client_request_timeout(config.connections.header_timeout)
    .keep_alive(keep_alive(config.connections.keep_alive))
    .max_connections(config.connections.max_connections)
    .shutdown_timeout(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((server, port))
}

/// A bound role, ready to serve.
pub struct Application {
    config: CoreConfig,
    role: Arc<dyn RoleFlush>,
    server: Server,
    metrics_server: Option<Server>,
    port: u16,
    metrics_port: Option<u16>,
    in_flight: prometheus::IntGauge,
    readiness: Readiness,
    span: tracing::Span,
}

/// The part of [`Role`] the running application needs after binding, object-safe.
trait RoleFlush {
    fn start(&self, context: &RoleContext);
    fn flush(&self) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + '_>>;
}

impl<R: Role> RoleFlush for R {
    fn start(&self, context: &RoleContext) {
        Role::start(self, context)
    }
    fn flush(&self) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + '_>> {
        Box::pin(Role::flush(self))
    }
}

impl Application {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    pub fn role(&self) -> &str {
        &self.config.role
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Serve until `shutdown` resolves, then: readiness 503 at once, let in-flight requests
    /// finish (up to SHUTDOWN_GRACE_SECONDS), stop background work, flush state.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let span = self.span.clone();
        self.run_inner(shutdown).instrument(span).await
    }

    async fn run_inner(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let grace = Duration::from_secs(self.config.shutdown_grace_seconds);
        let handle = self.server.handle();
        let mut server_task = actix_web::rt::spawn(self.server);
        let metrics_handle = self.metrics_server.map(|server| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });

        let background = CancellationToken::new();
        let context = RoleContext {
            shutdown: background.clone(),
            span: self.span.clone(),
        };
        if let Some(client) = HeartbeatClient::from_config(&self.config)? {
            context.spawn(client.run(background.clone()));
        }
        self.role.start(&context);
        self.readiness.set(true);
        tracing::info!(port = self.port, metrics_port = self.metrics_port, "ready");

        tokio::pin!(shutdown);
        tokio::select! {
            _ = &mut shutdown => {}
            result = &mut server_task => {
                background.cancel();
                result.context("HTTP server task")?.context("HTTP server")?;
                anyhow::bail!("HTTP server stopped on its own");
            }
        }

        self.readiness.set(false);
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutting down: not ready, draining"
        );
        let deadline = tokio::time::Instant::now() + grace;
        while self.in_flight.get() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.stop(true).await;
        if let Some(handle) = metrics_handle {
            handle.stop(true).await;
        }
        background.cancel();
        self.role
            .flush()
            .await
            .context("saving state on shutdown")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            _ => {
                tracing::error!("cannot listen for signals; stopping only on Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
