//! obs-stack: all five roles in one process, each on its own port, wired to each other.
//!
//! Same code as the role binaries; only the wiring differs (Loki's single-binary mode):
//! every role heartbeats to the in-process watcher, and each keeps its state in its own
//! folder under STATE_DIR (default `./data`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use obs_core::config::{self, ConfigError, CoreConfig};
use obs_core::{Application, CancellationToken, Role, Service};
use serde::Deserialize;

/// The roles in start order: the watcher first, so the others' heartbeats find it.
pub const ROLES: [(&str, u16); 5] = [
    (watcher::NAME, watcher::DEFAULT_PORT),
    (curator::NAME, curator::DEFAULT_PORT),
    (planner::NAME, planner::DEFAULT_PORT),
    (synthesizer::NAME, synthesizer::DEFAULT_PORT),
    (archivist::NAME, archivist::DEFAULT_PORT),
];

/// Per-role overrides: `<ROLE>_PORT`, `<ROLE>_METRICS_PORT`.
#[derive(Debug, Deserialize)]
struct RoleOverrides {
    port: Option<u16>,
    metrics_port: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct StackEnv {
    state_dir: Option<PathBuf>,
}

/// The configs of the five roles, from the environment.
pub fn configs_from_env() -> Result<Vec<CoreConfig>, ConfigError> {
    let stack: StackEnv = config::from_env()?;
    let state_root = stack.state_dir.unwrap_or_else(|| PathBuf::from("./data"));
    let mut configs = Vec::with_capacity(ROLES.len());
    for (role, default_port) in ROLES {
        let prefix = format!("{}_", role.to_uppercase());
        let overrides: RoleOverrides = config::from_env_prefixed(&prefix)?;
        let mut config = CoreConfig::from_env(role, default_port)?;
        config.role = role.to_string();
        config.port = overrides.port.unwrap_or(default_port);
        config.metrics_port = overrides.metrics_port;
        config.port_prefix = prefix;
        config.state_dir = state_root.join(role);
        configs.push(config);
    }
    refuse_shared_ports(&configs)?;
    Ok(configs)
}

/// Two listeners on one port would fail at bind, naming only the second and only after the
/// first role has started; said at start instead, naming both variables.
fn refuse_shared_ports(configs: &[CoreConfig]) -> Result<(), ConfigError> {
    let mut taken: Vec<(u16, String)> = Vec::new();
    for config in configs {
        let ports = [
            (Some(config.port), config.port_variable()),
            (config.metrics_port, config.metrics_port_variable()),
        ];
        // Port 0 asks the system for a free port: any number of listeners may ask.
        for (port, variable) in ports.into_iter().filter_map(|(p, v)| Some((p?, v))) {
            if port == 0 {
                continue;
            }
            if let Some((_, first)) = taken.iter().find(|(other, _)| *other == port) {
                return Err(ConfigError::new(format!(
                    "{variable}: port {port} is also {first}'s (each role needs its own port)"
                )));
            }
            taken.push((port, variable));
        }
    }
    Ok(())
}

/// The five roles, bound and ready to run.
pub struct Stack {
    apps: Vec<Application>,
}

impl Stack {
    /// Bind every role from its config, in [`ROLES`] order. All five listeners are bound
    /// first, so each role is built knowing where the others are: downstream URLs
    /// (WATCHER_URL, CURATOR_URL, …) point at this process unless set in the environment,
    /// roles heartbeat to the watcher here unless MONITOR_ENDPOINT says otherwise, and the
    /// watcher probes each other role's `/healthz`: the fleet watches itself.
    pub async fn build(mut configs: Vec<CoreConfig>) -> anyhow::Result<Stack> {
        let listeners = configs
            .iter()
            .map(|config| {
                obs_core::server::bind_main_listener(config)
                    .with_context(|| format!("starting the {}", config.role))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut urls = Vec::with_capacity(listeners.len());
        for (config, listener) in configs.iter().zip(&listeners) {
            let address = SocketAddr::new(
                loopback_if_unspecified(config.host),
                listener.local_addr()?.port(),
            );
            urls.push((config.role.clone(), format!("http://{address}")));
        }
        let url_of = |role: &str| urls.iter().find(|(r, _)| r == role).map(|(_, u)| u.clone());
        for config in &mut configs {
            let peers = &mut config.peers;
            for (slot, role) in [
                (&mut peers.watcher, watcher::NAME),
                (&mut peers.curator, curator::NAME),
                (&mut peers.planner, planner::NAME),
                (&mut peers.synthesizer, synthesizer::NAME),
                (&mut peers.archivist, archivist::NAME),
            ] {
                if slot.is_none() {
                    *slot = url_of(role);
                }
            }
            if config.monitor_endpoint.is_none() && config.role != watcher::NAME {
                config.monitor_endpoint = url_of(watcher::NAME);
            }
        }

        let mut apps = Vec::with_capacity(configs.len());
        let mut probe_targets: Option<watcher::ProbeTargets> = None;
        for (config, listener) in configs.into_iter().zip(listeners) {
            let role = config.role.clone();
            let app = match role.as_str() {
                watcher::NAME => {
                    async {
                        let service = Service::new(config)?;
                        let watcher = watcher::Watcher::new(&service).await?;
                        probe_targets = Some(watcher.probe_targets());
                        service.bind_listener(watcher, listener).await
                    }
                    .await
                }
                curator::NAME => bind(config, listener, curator::Curator::new).await,
                planner::NAME => bind(config, listener, planner::Planner::new).await,
                synthesizer::NAME => bind(config, listener, synthesizer::Synthesizer::new).await,
                archivist::NAME => bind(config, listener, archivist::Archivist::new).await,
                other => anyhow::bail!("unknown role {other}"),
            }
            .with_context(|| format!("starting the {role}"))?;
            apps.push(app);
        }
        if let Some(targets) = &probe_targets {
            for (role, url) in urls.iter().filter(|(role, _)| role != watcher::NAME) {
                targets.add(role, &format!("{url}/healthz"))?;
            }
        }
        Ok(Stack { apps })
    }

    /// (role, port, metrics port) of each bound role.
    pub fn endpoints(&self) -> Vec<(String, u16, Option<u16>)> {
        self.apps
            .iter()
            .map(|app| (app.role().to_string(), app.port(), app.metrics_port()))
            .collect()
    }

    /// Run every role until `shutdown` resolves or one of them fails; then stop them all.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let runs = self.apps.into_iter().map(|app| {
            let stop = stop.clone();
            async move {
                let role = app.role().to_string();
                let result = app.run_until(stop.clone().cancelled_owned()).await;
                // One role failing stops the others: a half-running stack is worse than none.
                stop.cancel();
                result.with_context(|| format!("{role} stopped with an error"))
            }
        });
        let all = futures_util::future::join_all(runs);
        tokio::pin!(all);
        let results = tokio::select! {
            results = &mut all => results,
            _ = shutdown => {
                stop.cancel();
                all.await
            }
        };
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        Ok(())
    }
}

/// Where a role bound to `host` is reached from this process.
fn loopback_if_unspecified(host: std::net::IpAddr) -> std::net::IpAddr {
    match host {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    }
}

async fn bind<F, R>(
    config: CoreConfig,
    listener: std::net::TcpListener,
    make_role: F,
) -> anyhow::Result<Application>
where
    F: AsyncFnOnce(&Service) -> anyhow::Result<R>,
    R: Role,
{
    let service = Service::new(config)?;
    let role = make_role(&service).await?;
    service.bind_listener(role, listener).await
}

/// The lines obs-stack prints at start: where each role is.
pub fn describe(endpoints: &[(String, u16, Option<u16>)], configs: &[CoreConfig]) -> String {
    let mut text = format!(
        "obs-stack {}: five roles in one process (Ctrl-C stops them)\n",
        obs_core::VERSION
    );
    for ((role, port, metrics_port), config) in endpoints.iter().zip(configs) {
        let host = if config.host.is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            config.host.to_string()
        };
        let metrics = format!("http://{host}:{}/metrics", metrics_port.unwrap_or(*port));
        text.push_str(&format!(
            "  {role:<12} http://{host}:{port}  docs http://{host}:{port}/docs/  metrics {metrics}  state {}\n",
            config.state_dir.display()
        ));
    }
    text
}

/// The five roles on loopback port 0 with state under `root`: what the tests run.
pub fn configs_for_tests(root: &std::path::Path) -> Vec<CoreConfig> {
    ROLES
        .iter()
        .map(|(role, _)| CoreConfig::for_tests(role, root.join(role)))
        .collect()
}
