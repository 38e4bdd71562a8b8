//! The whole `main` of a role binary, so each main is one call:
//! `obs_core::run_role("watcher", 8001, watcher::Watcher::new)`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::config::{ConfigError, CoreConfig, Listen};
use crate::server::{shutdown_signal, Role, Service};

/// Run one role until SIGTERM/SIGINT. Exit codes: 0 after a clean stop, 2 for bad
/// configuration, 1 for anything else — each with one line on stderr.
///
/// `healthcheck` as the first argument asks the running role on this machine instead
/// (the container HEALTHCHECK), exiting 0 when `/healthz` answers 200; `healthcheck URL...`
/// asks each URL instead (the chart's `helm test`), exiting 0 when every one answers 200.
pub fn run_role<F, R>(role: &'static str, listen: impl Into<Listen>, make_role: F) -> !
where
    F: AsyncFnOnce(&Service) -> anyhow::Result<R>,
    R: Role,
{
    let listen = listen.into();
    let about = format!(
        "the obs-fleet {role} role.\n\nUsage: {role} [healthcheck [URL...] | --recover]\n\n\
         healthcheck  GET /healthz on this machine's PORT, or each http:// URL given (a\n\
         \x20            URL without a path means its /healthz); exit 0 when all answer 200\n\
         --recover  rebuild a damaged embedded database (STATE_DIR/{role}.db) from what is\n\
         \x20          intact, keep the damaged files aside, and say what it kept\n\n\
         Configured by environment variables (PORT, METRICS_PORT, LOG_FORMAT, ...);\n\
         see the README. Serves /healthz, /readyz, /metrics and /docs."
    );
    match command_line(role, &about, true) {
        Invocation::Healthcheck(urls) => std::process::exit(healthcheck(role, listen, &urls)),
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
    /// `healthcheck [URL...]`: ask the role running on this machine, or each URL, instead.
    Healthcheck(Vec<String>),
    /// `--recover`: rebuild a damaged embedded database, then exit.
    Recover,
}

/// The command line every server binary shares: `--help` and `--version` answer and exit 0,
/// anything unknown exits 2, so no flag ever starts a server by accident. `about` follows
/// "<program> <version>: " in the help text.
pub fn command_line(program: &str, about: &str, healthcheck: bool) -> Invocation {
    match std::env::args().nth(1).as_deref() {
        None => Invocation::Serve,
        Some("healthcheck") if healthcheck => {
            Invocation::Healthcheck(std::env::args().skip(2).collect())
        }
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

/// GET /healthz on this machine's PORT, or on each of `urls`, with a plain socket: no
/// runtime, no dependencies, fit for a `FROM scratch` image's HEALTHCHECK and for a
/// `helm test` Pod. Exit codes: 0 all answered 200, 1 one did not, 2 a URL is unusable.
fn healthcheck(role: &str, listen: Listen, urls: &[String]) -> i32 {
    if urls.is_empty() {
        let port = match CoreConfig::from_env(role, listen) {
            Ok(config) => config.port,
            Err(error) => {
                eprintln!("{error}");
                return 1;
            }
        };
        let local = HealthTarget {
            host: "127.0.0.1".to_string(),
            port,
            path: "/healthz".to_string(),
        };
        return match local.probe() {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("healthcheck: {error}");
                1
            }
        };
    }
    // Every URL is checked before any is asked: a typo is a usage error, not a failure.
    let mut targets = Vec::with_capacity(urls.len());
    for raw in urls {
        match HealthTarget::parse(raw) {
            Ok(target) => targets.push((crate::redact::url(raw), target)),
            Err(reason) => {
                eprintln!("healthcheck: {}: {reason}", crate::redact::url(raw));
                return 2;
            }
        }
    }
    // Each one is asked even after a failure, so the output names every role that is down.
    let mut failed = 0;
    for (shown, target) in &targets {
        match target.probe() {
            Ok(()) => println!("healthcheck: {shown} ok"),
            Err(error) => {
                eprintln!("healthcheck: {shown}: {error}");
                failed += 1;
            }
        }
    }
    i32::from(failed > 0)
}

/// Where one health probe goes.
#[derive(Debug, PartialEq)]
struct HealthTarget {
    host: String,
    port: u16,
    /// Path and query, as sent.
    path: String,
}

impl HealthTarget {
    /// An `http://host[:port][/path][?query]` URL; a bare origin means its /healthz (a
    /// role's base URL, as ROLE_URL-style settings hold it). The probe speaks plain
    /// HTTP only: https is refused here rather than failing later as a garbled answer.
    fn parse(raw: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(raw).map_err(|error| format!("not a URL ({error})"))?;
        if url.scheme() != "http" {
            return Err(format!(
                "only http:// URLs can be checked (the probe has no TLS), not {}://",
                url.scheme()
            ));
        }
        let host = match url.host_str() {
            // An IPv6 literal comes bracketed; the resolver and the Host header want it bare.
            Some(host) if !host.is_empty() => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            _ => return Err("the URL has no host".to_string()),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let mut path = if url.path() == "/" && url.query().is_none() {
            "/healthz".to_string()
        } else {
            url.path().to_string()
        };
        if let Some(query) = url.query() {
            path = format!("{path}?{query}");
        }
        Ok(Self { host, port, path })
    }

    /// GET the path, HTTP/1.1 with the URL's Host (a Knative or ingress router picks the
    /// service by it); only the status line is read.
    fn probe(&self) -> std::io::Result<()> {
        let timeout = Duration::from_secs(3);
        let addresses: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|error| {
                std::io::Error::other(format!("cannot resolve {}: {error}", self.host))
            })?
            .collect();
        let mut last_error = std::io::Error::other(format!("{} resolves to no address", self.host));
        for address in addresses {
            match TcpStream::connect_timeout(&address, timeout) {
                Ok(stream) => return self.ask(stream, timeout),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    fn ask(&self, mut stream: TcpStream, timeout: Duration) -> std::io::Result<()> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        // As browsers and curl send it: no port when it is http's own, since routers that
        // match on the Host (Knative's, an ingress's) may know the name only without one.
        let name = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let host = if self.port == 80 {
            name
        } else {
            format!("{name}:{}", self.port)
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: obs-fleet-healthcheck\r\nConnection: close\r\n\r\n",
            self.path
        );
        stream.write_all(request.as_bytes())?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        if head.starts_with(b"HTTP/1.") && &head[9..12] == b"200" {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "{} answered {}",
                self.path,
                String::from_utf8_lossy(&head).trim_end()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;

    /// A one-shot HTTP server on a free loopback port: answers `status` to the first
    /// request and hands back the request's head.
    fn answer_once(status: &'static str) -> (u16, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let (sent, received) = mpsc::channel();
        thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            let _ = sent.send(String::from_utf8_lossy(&head).into_owned());
        });
        (port, received)
    }

    /// A port nothing listens on (bound, then released).
    fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.local_addr().expect("local address").port()
    }

    fn urls(list: &[String]) -> Vec<String> {
        list.to_vec()
    }

    #[test]
    fn a_url_names_host_port_and_path_and_a_bare_origin_means_healthz() {
        let parsed = |raw: &str| HealthTarget::parse(raw).expect(raw);
        assert_eq!(
            parsed("http://obs-curator.monitoring.svc.cluster.local"),
            HealthTarget {
                host: "obs-curator.monitoring.svc.cluster.local".into(),
                port: 80,
                path: "/healthz".into()
            }
        );
        assert_eq!(parsed("http://10.0.0.7:8002/").path, "/healthz");
        assert_eq!(parsed("http://10.0.0.7:8002/").port, 8002);
        assert_eq!(parsed("http://h/readyz?x=1").path, "/readyz?x=1");
        assert_eq!(parsed("http://[::1]:9/healthz").host, "::1");
    }

    #[test]
    fn unusable_urls_are_refused_with_the_reason() {
        for (raw, reason) in [
            ("curator:8002", "only http://"),
            ("https://curator/healthz", "no TLS"),
            ("not a url", "not a URL"),
            ("file:///etc/passwd", "only http://"),
        ] {
            let error = HealthTarget::parse(raw).expect_err(raw);
            assert!(error.contains(reason), "{raw}: {error}");
        }
    }

    #[test]
    fn every_url_answering_200_passes_and_the_host_header_is_the_urls() {
        let (first, first_request) = answer_once("200 OK");
        let (second, second_request) = answer_once("200 OK");
        let code = healthcheck(
            "test",
            Listen::from(0),
            &urls(&[
                format!("http://localhost:{first}"),
                format!("http://127.0.0.1:{second}/readyz"),
            ]),
        );
        assert_eq!(code, 0);
        let head = first_request.recv().expect("the first server was asked");
        assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("Host: localhost:{first}\r\n")),
            "{head}"
        );
        let head = second_request.recv().expect("the second server was asked");
        assert!(head.starts_with("GET /readyz HTTP/1.1\r\n"), "{head}");
    }

    #[test]
    fn one_url_down_or_not_200_fails_and_the_others_are_still_asked() {
        let (unhealthy, _) = answer_once("503 Service Unavailable");
        let (healthy, healthy_request) = answer_once("200 OK");
        let code = healthcheck(
            "test",
            Listen::from(0),
            &urls(&[
                format!("http://127.0.0.1:{unhealthy}/healthz"),
                format!("http://127.0.0.1:{}/healthz", closed_port()),
                format!("http://127.0.0.1:{healthy}/healthz"),
            ]),
        );
        assert_eq!(code, 1);
        healthy_request
            .recv()
            .expect("the URL after the failures was asked too");
        let error = HealthTarget::parse(&format!("http://127.0.0.1:{}/healthz", closed_port()))
            .expect("a URL")
            .probe()
            .expect_err("nothing listens");
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn a_bad_url_is_a_usage_error_and_nothing_is_asked() {
        let (port, request) = answer_once("200 OK");
        let code = healthcheck(
            "test",
            Listen::from(0),
            &urls(&[
                format!("http://127.0.0.1:{port}/healthz"),
                "https://curator/healthz".to_string(),
            ]),
        );
        assert_eq!(code, 2);
        assert!(
            request.recv_timeout(Duration::from_millis(200)).is_err(),
            "no URL is asked when one is unusable"
        );
    }

    #[test]
    fn the_host_header_names_the_port_only_when_it_is_not_80() {
        let (port, request) = answer_once("200 OK");
        let target = HealthTarget {
            host: "127.0.0.1".into(),
            port,
            path: "/healthz".into(),
        };
        target.probe().expect("the server answers 200");
        let head = request.recv().expect("the server was asked");
        assert!(
            head.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{head}"
        );
        // Port 80 is left out, as curl and browsers do (Knative routes by the bare name).
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let stream =
            TcpStream::connect(listener.local_addr().expect("local address")).expect("connect");
        let (mut served, _) = listener.accept().expect("accept");
        let on_80 = HealthTarget {
            host: "curator.monitoring.svc".into(),
            port: 80,
            path: "/healthz".into(),
        };
        served
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .expect("answer");
        on_80
            .ask(stream, Duration::from_secs(3))
            .expect("200 read back");
        let mut head = vec![0u8; 512];
        let read = served.read(&mut head).expect("the request");
        let head = String::from_utf8_lossy(&head[..read]).into_owned();
        assert!(head.contains("Host: curator.monitoring.svc\r\n"), "{head}");
    }

    #[test]
    fn a_name_that_does_not_resolve_fails() {
        let target = HealthTarget::parse("http://no-such-host.invalid/healthz").expect("a URL");
        let error = target.probe().expect_err("no such host");
        assert!(
            error
                .to_string()
                .contains("cannot resolve no-such-host.invalid"),
            "{error}"
        );
    }
}
