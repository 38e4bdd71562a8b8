//! A PostgreSQL URL → a connection config and a rustls TLS connector that honours libpq's
//! `sslmode`, so a role can reach a managed database (which usually demands TLS) with the URL
//! its operator already has.
//!
//! ```text
//! let target = obs_core::pg_connect::parse(&url)?;
//! let (client, connection) = target.config.connect(target.tls.clone()).await?;
//! ```
//!
//! The blocking `postgres` crate takes the same pair: `postgres::Config::from(target.config)`
//! wraps the tokio-postgres config, and `target.tls` is a `MakeTlsConnect` for both.
//!
//! `sslmode`, as libpq reads it:
//!
//! | sslmode               | TLS                   | certificate checked                 |
//! |-----------------------|-----------------------|-------------------------------------|
//! | `disable`             | never                 | -                                   |
//! | `allow`, `prefer`     | if the server has it  | no                                  |
//! | `require`             | always                | no; as `verify-ca` with sslrootcert |
//! | `verify-ca`           | always                | chain, not the host name            |
//! | `verify-full`         | always                | chain and host name                 |
//!
//! `prefer` is the default when the URL has no `sslmode`, as in libpq. Where this differs
//! from libpq, on purpose or because tokio-postgres decides:
//! - `allow` is `prefer`: TLS is offered first rather than after a plain attempt fails (never
//!   less protected than libpq's order).
//! - `prefer` falls back to plain when the server says it has no TLS; a failed handshake is an
//!   error rather than a silent retry without TLS.
//! - `sslrootcert=<file>` names the only roots trusted, as in libpq; without it (or with
//!   `sslrootcert=system`) the system's roots are used (libpq would read
//!   `~/.postgresql/root.crt`, which a container does not have). A named file that cannot be
//!   read is an error even under `require`, where libpq would quietly skip verification: a
//!   typo must not turn verification off.
//! - Over a Unix socket the server has no TLS, so with only socket hosts `sslmode` is
//!   ignored, as libpq does; tokio-postgres alone would fail `require` there.
//!
//! Client certificates (`sslcert`, `sslkey`) are not supported; tokio-postgres rejects them
//! as unknown options, naming them. TLS needs a host name in the URL (`hostaddr` alone
//! gives tokio-postgres none to hand the handshake).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as WireSslMode};

/// The `MakeTlsConnect` both tokio-postgres and the blocking `postgres` crate take. Cloning
/// is cheap (the rustls config is shared).
pub type PgTls = tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> anyhow::Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => bail!(
                "sslmode must be one of disable, allow, prefer, require, verify-ca, \
                 verify-full (got {other:?})"
            ),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where to connect and how: `config.connect(tls.clone())` for tokio-postgres,
/// `postgres::Config::from(config).connect(tls)` for the blocking crate, or both halves to
/// a pool (deadpool-postgres's `Manager::from_config(config, tls, …)`).
#[derive(Clone)]
pub struct PgTarget {
    /// The URL's settings, `sslmode` already mapped to what tokio-postgres knows.
    pub config: tokio_postgres::Config,
    /// TLS as `sslmode` (and `sslrootcert`) asked.
    pub tls: PgTls,
    /// The URL with its password hidden, for logs and error lines.
    pub redacted: String,
    /// The `sslmode` asked for (`prefer` when the URL has none).
    pub sslmode: SslMode,
}

impl fmt::Debug for PgTarget {
    // By hand: the config holds the password, and the connector has no Debug.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.redacted)
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

/// Parse a `postgres://` (or `postgresql://`) URL. One error, naming the parameter at fault
/// and showing the URL only redacted, for a bad URL, a bad `sslmode`, or an unreadable
/// `sslrootcert`. The roots are read here, once, so a role fails at start rather than on its
/// first connection.
pub fn parse(url: &str) -> anyhow::Result<PgTarget> {
    let redacted = redact(url);
    parse_inner(url, &redacted).map_err(|error| anyhow!("PostgreSQL URL {redacted}: {error:#}"))
}

fn parse_inner(url: &str, redacted: &str) -> anyhow::Result<PgTarget> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("not a PostgreSQL URL (expected postgres://user:password@host:port/database)");
    }
    let (rest, ssl) = take_ssl_params(url)?;
    let mut config: tokio_postgres::Config = rest.parse()?;

    let system_roots = ssl.rootcert.as_deref() == Some("system");
    let sslmode = match ssl.mode.as_deref() {
        Some(value) => SslMode::parse(value)?,
        // libpq: sslrootcert=system raises the default so the system's roots mean something.
        None if system_roots => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if system_roots && sslmode != SslMode::VerifyFull {
        // libpq's rule too: any CA in the system store could vouch for an impostor unless
        // the host name is checked.
        bail!("sslmode={sslmode} may not be used with sslrootcert=system (use verify-full)");
    }

    let only_sockets = !config.get_hosts().is_empty()
        && config.get_hostaddrs().is_empty()
        && config
            .get_hosts()
            .iter()
            .all(|host| !matches!(host, Host::Tcp(_)));
    config.ssl_mode(match sslmode {
        _ if only_sockets => WireSslMode::Disable,
        SslMode::Disable => WireSslMode::Disable,
        SslMode::Allow | SslMode::Prefer => WireSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireSslMode::Require,
    });

    let rootcert_file = ssl.rootcert.as_deref().filter(|_| !system_roots);
    let roots = || -> anyhow::Result<Arc<RootCertStore>> {
        Ok(Arc::new(match rootcert_file {
            Some(path) => file_roots(Path::new(path))?,
            None => system_roots_store(sslmode)?,
        }))
    };
    let check = match sslmode {
        SslMode::Disable | SslMode::Allow | SslMode::Prefer => Check::Nothing,
        // libpq: require with a root certificate file behaves as verify-ca.
        SslMode::Require if rootcert_file.is_none() => Check::Nothing,
        SslMode::Require | SslMode::VerifyCa => Check::Chain(roots()?),
        SslMode::VerifyFull => Check::ChainAndName(roots()?),
    };

    Ok(PgTarget {
        config,
        tls: PgTls::new(client_config(check)?),
        redacted: redacted.to_string(),
        sslmode,
    })
}

/// The libpq parameters tokio-postgres's parser does not take, removed from the URL.
#[derive(Default)]
struct SslParams {
    mode: Option<String>,
    rootcert: Option<String>,
}

/// Remove `sslmode` and `sslrootcert` from the query (tokio-postgres rejects `verify-ca`,
/// `verify-full` and `sslrootcert`) and return the rest of the URL untouched.
fn take_ssl_params(url: &str) -> anyhow::Result<(String, SslParams)> {
    let Some(query_start) = query_start(url) else {
        return Ok((url.to_string(), SslParams::default()));
    };
    let (head, query) = (&url[..query_start], &url[query_start + 1..]);
    let mut ssl = SslParams::default();
    let mut kept = Vec::new();
    for segment in query.split('&') {
        let Some((key, value)) = segment.split_once('=') else {
            // Left for tokio-postgres to reject in its own words.
            kept.push(segment);
            continue;
        };
        let decode = |text: &str, what: &str| {
            percent_decode_str(text)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| anyhow!("{what}: not UTF-8 once percent-decoded"))
        };
        let key = decode(key, "a parameter name")?;
        // Repeated parameters: the last one wins, as in tokio-postgres.
        match key.as_str() {
            "sslmode" => ssl.mode = Some(decode(value, "sslmode")?),
            "sslrootcert" => ssl.rootcert = Some(decode(value, "sslrootcert")?),
            _ => kept.push(segment),
        }
    }
    let rest = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((rest, ssl))
}

/// Where the query starts, found the way tokio-postgres finds it: the credentials run to the
/// first `@`, the query starts at the first `?` after them.
fn query_start(url: &str) -> Option<usize> {
    let after_credentials = url.find('@').unwrap_or(0);
    url[after_credentials..]
        .find('?')
        .map(|at| after_credentials + at)
}

/// The URL with any password replaced by `***`: the one in the credentials and any
/// `password=` (or `sslpassword=`) parameter. Input that is not a URL at all is not echoed.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_string();
    };
    // A key=value string can hold "://" inside a value; its "scheme" would echo the rest.
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return "(not a URL)".to_string();
    }
    let mut out = format!("{scheme}://");
    // Where the query starts: the first '?' followed by a parameter name and '='. A '?'
    // inside an unencoded password is (almost always) not.
    let query_start = rest
        .match_indices('?')
        .map(|(at, _)| at)
        .find(|&at| {
            rest[at + 1..].split_once('=').is_some_and(|(key, _)| {
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '%'))
            })
        })
        .unwrap_or(rest.len());
    let mut after_credentials = rest;
    // The credentials end at the last '@' before the query: a password with an unencoded
    // '@', '/' or '?' is hidden whole rather than half shown (an '@' in the database name
    // hides more than needed, which is the safe side).
    if let Some(at) = rest[..query_start].rfind('@') {
        let credentials = &rest[..at];
        match credentials.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push_str(":***@");
            }
            None => {
                out.push_str(credentials);
                out.push('@');
            }
        }
        after_credentials = &rest[at + 1..];
    }
    match after_credentials.split_once('?') {
        None => out.push_str(after_credentials),
        Some((location, query)) => {
            out.push_str(location);
            out.push('?');
            let segments: Vec<String> = query
                .split('&')
                .map(|segment| match segment.split_once('=') {
                    Some((key, _))
                        if percent_decode_str(key)
                            .decode_utf8_lossy()
                            .to_ascii_lowercase()
                            .contains("password") =>
                    {
                        format!("{key}=***")
                    }
                    _ => segment.to_string(),
                })
                .collect();
            out.push_str(&segments.join("&"));
        }
    }
    out
}

/// What the certificate verifier checks. The roots live in the variants that use them, so
/// a check can never be asked for without roots to check against.
#[derive(Debug)]
enum Check {
    /// Encryption against a passive listener only (libpq's `prefer` and `require`).
    Nothing,
    /// The chain up to one of these roots (`verify-ca`).
    Chain(Arc<RootCertStore>),
    /// The chain, and that the certificate names the host in the URL (`verify-full`).
    ChainAndName(Arc<RootCertStore>),
}

fn provider() -> Arc<CryptoProvider> {
    // Explicit, not the process default: nothing else has to install one, and aws-lc-rs
    // (rustls's default) needs cmake and nasm to build.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(check: Check) -> anyhow::Result<rustls::ClientConfig> {
    let provider = provider();
    let verifier = PgVerifier {
        check,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls with the ring provider")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // What libpq 17 sends; a PostgreSQL 17 server requires it for sslnegotiation=direct,
    // older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

fn file_roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("sslrootcert: reading {shown}"))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("sslrootcert: {shown} is not a PEM certificate file"))?;
    if certs.is_empty() {
        bail!("sslrootcert: {shown} holds no PEM certificates");
    }
    let mut roots = RootCertStore::empty();
    for (index, cert) in certs.into_iter().enumerate() {
        roots.add(cert).with_context(|| {
            format!(
                "sslrootcert: certificate {} in {shown} is unusable",
                index + 1
            )
        })?;
    }
    Ok(roots)
}

fn system_roots_store(sslmode: SslMode) -> anyhow::Result<RootCertStore> {
    // Honours SSL_CERT_FILE / SSL_CERT_DIR, else the distribution's bundle.
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, _unparsable) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map(|error| format!(" ({error})"))
            .unwrap_or_default();
        bail!(
            "sslmode={sslmode} needs trusted roots: no system CA certificates found{why}; \
             give sslrootcert=<PEM file> or set SSL_CERT_FILE"
        );
    }
    Ok(roots)
}

/// One verifier for every mode, so the handshake signature is always checked (the server
/// proves it holds the key of the certificate it shows) and only the certificate checks
/// vary. Chain and name checks are rustls's own (what its WebPkiServerVerifier does, without
/// revocation lists, which libpq only uses when given sslcrl).
#[derive(Debug)]
struct PgVerifier {
    check: Check,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PgVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (roots, check_name) = match &self.check {
            Check::Nothing => return Ok(ServerCertVerified::assertion()),
            Check::Chain(roots) => (roots, false),
            Check::ChainAndName(roots) => (roots, true),
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if check_name {
            rustls::client::verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/fleet?sslmode=require"),
            "postgres://app:***@db.example:5432/fleet?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://app@db/fleet?password=s3cret&sslmode=verify-full"),
            "postgresql://app@db/fleet?password=***&sslmode=verify-full"
        );
        assert_eq!(redact("postgres://db/fleet"), "postgres://db/fleet");
        // Unencoded '@', '/' and '?' in a password: hidden whole.
        assert_eq!(
            redact("postgres://app:p@ss/w?rd@db/fleet?application_name=a@b"),
            "postgres://app:***@db/fleet?application_name=a@b"
        );
        assert_eq!(
            redact("postgres://app:p@ss@db/fleet"),
            "postgres://app:***@db/fleet"
        );
        assert_eq!(
            redact("postgres://app:pw@db/fleet?application_name=a@b"),
            "postgres://app:***@db/fleet?application_name=a@b"
        );
        assert_eq!(redact("host=db password=a://b"), "(not a URL)");
        assert_eq!(redact("user=app password=s3cret"), "(not a URL)");
    }

    #[test]
    fn sslmode_is_mapped_and_stripped() -> anyhow::Result<()> {
        let cases = [
            ("", SslMode::Prefer, WireSslMode::Prefer),
            ("?sslmode=disable", SslMode::Disable, WireSslMode::Disable),
            ("?sslmode=allow", SslMode::Allow, WireSslMode::Prefer),
            ("?sslmode=prefer", SslMode::Prefer, WireSslMode::Prefer),
            ("?sslmode=require", SslMode::Require, WireSslMode::Require),
        ];
        for (query, mode, wire) in cases {
            let url = format!("postgres://app:pw@db:5433/fleet{query}");
            let target = parse(&url)?;
            assert_eq!(target.sslmode, mode, "{url}");
            assert_eq!(target.config.get_ssl_mode(), wire, "{url}");
            assert_eq!(target.config.get_dbname(), Some("fleet"));
            assert_eq!(target.config.get_ports(), &[5433]);
        }
        Ok(())
    }

    #[test]
    fn other_parameters_survive_the_stripping() -> anyhow::Result<()> {
        let target = parse(
            "postgres://app:pw@db/fleet?application_name=archivist&sslmode=disable\
             &connect_timeout=7",
        )?;
        assert_eq!(target.config.get_application_name(), Some("archivist"));
        assert_eq!(
            target.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(7))
        );
        assert_eq!(target.config.get_password(), Some(&b"pw"[..]));
        Ok(())
    }

    #[test]
    fn unix_sockets_ignore_sslmode() -> anyhow::Result<()> {
        let target = parse("postgres://app@%2Fvar%2Frun%2Fpostgresql/fleet?sslmode=require")?;
        assert_eq!(target.config.get_ssl_mode(), WireSslMode::Disable);
        assert_eq!(target.sslmode, SslMode::Require);
        Ok(())
    }

    #[test]
    fn errors_name_the_parameter_and_not_the_password() {
        let cases = [
            ("postgres://app:hunter2@db/x?sslmode=verify_full", "sslmode"),
            ("postgres://app:hunter2@db/x?sslcert=/c.pem", "sslcert"),
            ("postgres://app:hunter2@db/x?port=abc", "port"),
            (
                "postgres://app:hunter2@db/x?sslmode=require&sslrootcert=/nonexistent/ca.pem",
                "sslrootcert",
            ),
            (
                "postgres://app:hunter2@db/x?sslmode=require&sslrootcert=system",
                "sslrootcert=system",
            ),
            ("mysql://app:hunter2@db/x", "not a PostgreSQL URL"),
        ];
        for (url, names) in cases {
            let message = match parse(url) {
                Ok(_) => panic!("{url} parsed"),
                Err(error) => format!("{error:#}"),
            };
            assert!(message.contains(names), "{url}: {message}");
            assert!(!message.contains("hunter2"), "{url}: {message}");
        }
    }
}
