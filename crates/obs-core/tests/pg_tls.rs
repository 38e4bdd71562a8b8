//! pg_connect against a real PostgreSQL (Debian's, via obs-testkit) serving TLS with a
//! certificate for `localhost` from a throwaway CA: each sslmode connects, or fails, the way
//! libpq's does, and the server itself says whether the session is encrypted.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use obs_core::pg_connect::{self, SslMode};
use obs_testkit::postgres::{self, PostgresServer};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Every connection attempt is bounded twice: libpq's connect_timeout in the URL, and this
/// around the whole connect-and-query.
const ATTEMPT: Duration = Duration::from_secs(20);

struct Pki {
    ca: String,
    /// A CA that signed nothing the server shows.
    other_ca: String,
    server_cert: String,
    server_key: String,
}

fn ca(name: &str) -> anyhow::Result<(CertificateParams, KeyPair, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key)?.pem();
    Ok((params, key, pem))
}

fn pki() -> anyhow::Result<Pki> {
    let (ca_params, ca_key, ca_pem) = ca("obs-fleet test CA")?;
    let (_, _, other_ca) = ca("obs-fleet other CA")?;
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate()?;
    // Only the name, not 127.0.0.1: verify-full against the address must then fail.
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_cert = params.signed_by(&server_key, &issuer)?.pem();
    Ok(Pki {
        ca: ca_pem,
        other_ca,
        server_cert,
        server_key: server_key.serialize_pem(),
    })
}

fn start_tls_server(pki: &Pki) -> anyhow::Result<PostgresServer> {
    PostgresServer::start_with(
        &[
            ("ssl", "on"),
            ("ssl_cert_file", "server.crt"),
            ("ssl_key_file", "server.key"),
        ],
        &[
            ("server.crt", pki.server_cert.as_bytes()),
            ("server.key", pki.server_key.as_bytes()),
        ],
    )
}

/// Connect with `url` and ask the server whether this session is encrypted.
async fn session_is_tls(url: &str) -> anyhow::Result<bool> {
    let target = pg_connect::parse(url)?;
    let attempt = async {
        let (client, connection) = target.config.connect(target.tls.clone()).await?;
        let driver = tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        drop(client);
        let _ = driver.await;
        anyhow::Ok(row.get::<_, bool>(0))
    };
    tokio::time::timeout(ATTEMPT, attempt)
        .await
        .with_context(|| format!("{} did not answer within {ATTEMPT:?}", target.redacted))?
}

/// The error of a connection that must fail, with its causes, as a role would log it.
async fn failure(url: &str) -> String {
    match session_is_tls(url).await {
        Ok(tls) => panic!("{url} connected (tls: {tls}) but must not"),
        Err(error) => format!("{error:#}"),
    }
}

fn url(host: &str, port: u16, query: &str) -> String {
    format!("postgres://postgres@{host}:{port}/postgres?connect_timeout=10&{query}")
}

fn write(dir: &Path, name: &str, contents: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, contents)?;
    Ok(path.display().to_string())
}

#[tokio::test]
async fn sslmodes_against_a_server_with_tls() -> anyhow::Result<()> {
    let pki = pki()?;
    let server = start_tls_server(&pki)?;
    let port = server.port();
    let files = tempfile::tempdir()?;
    let ca = write(files.path(), "ca.pem", &pki.ca)?;
    let other_ca = write(files.path(), "other-ca.pem", &pki.other_ca)?;

    // Encrypted, certificate not checked: the server's CA is nowhere in the roots.
    assert!(session_is_tls(&url("127.0.0.1", port, "sslmode=require")).await?);
    // No sslmode: libpq's default, prefer, takes TLS when the server offers it.
    assert!(session_is_tls(&url("127.0.0.1", port, "")).await?);
    assert!(session_is_tls(&url("127.0.0.1", port, "sslmode=allow")).await?);

    // The chain and the name both check out.
    let verified = format!("sslmode=verify-full&sslrootcert={ca}");
    assert!(session_is_tls(&url("localhost", port, &verified)).await?);
    // verify-ca checks the chain only, so the address (not in the certificate) is fine.
    let chain_only = format!("sslmode=verify-ca&sslrootcert={ca}");
    assert!(session_is_tls(&url("127.0.0.1", port, &chain_only)).await?);

    // Plain TCP when asked, on a server that offers TLS.
    assert!(!session_is_tls(&url("127.0.0.1", port, "sslmode=disable")).await?);

    // A CA that did not sign the server's certificate.
    let wrong_ca = format!("sslmode=verify-full&sslrootcert={other_ca}");
    let message = failure(&url("localhost", port, &wrong_ca)).await;
    assert!(
        message.contains("invalid peer certificate") && message.contains("UnknownIssuer"),
        "{message}"
    );
    // libpq: require with sslrootcert is verify-ca, so the wrong CA is refused there too.
    let require_wrong_ca = format!("sslmode=require&sslrootcert={other_ca}");
    let message = failure(&url("127.0.0.1", port, &require_wrong_ca)).await;
    assert!(message.contains("UnknownIssuer"), "{message}");

    // The right CA, but the certificate names localhost, not 127.0.0.1.
    let message = failure(&url("127.0.0.1", port, &verified)).await;
    assert!(message.contains("not valid for name"), "{message}");
    Ok(())
}

#[tokio::test]
async fn sslmodes_against_a_server_without_tls() -> anyhow::Result<()> {
    let port = postgres::shared().port();
    let message = failure(&url("127.0.0.1", port, "sslmode=require")).await;
    assert!(message.contains("server does not support TLS"), "{message}");
    let message = failure(&url("127.0.0.1", port, "sslmode=verify-full")).await;
    assert!(
        message.contains("server does not support TLS") || message.contains("sslrootcert"),
        "{message}"
    );
    // prefer falls back to plain TCP; nothing is verified, nothing fails.
    assert!(!session_is_tls(&url("127.0.0.1", port, "sslmode=prefer")).await?);
    Ok(())
}

#[test]
fn redact_hides_the_password() {
    let url = "postgres://archivist:hunter2@db.internal:5432/archive?sslmode=verify-full";
    let redacted = pg_connect::redact(url);
    assert_eq!(
        redacted,
        "postgres://archivist:***@db.internal:5432/archive?sslmode=verify-full"
    );
    let query = pg_connect::redact("postgresql://archivist@db/archive?password=hunter2");
    assert_eq!(query, "postgresql://archivist@db/archive?password=***");
}

#[test]
fn a_bad_sslmode_is_named_and_the_password_is_not_shown() {
    let message = match pg_connect::parse("postgres://archivist:hunter2@db/archive?sslmode=on") {
        Ok(target) => panic!("sslmode=on parsed as {:?}", target.sslmode),
        Err(error) => format!("{error:#}"),
    };
    assert!(message.contains("sslmode"), "{message}");
    assert!(message.contains("\"on\""), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn sslrootcert_system_means_verify_full() {
    // libpq's rule: the system's roots are only worth trusting with the name checked.
    let default = pg_connect::parse("postgres://db/archive?sslrootcert=system");
    match default {
        Ok(target) => assert_eq!(target.sslmode, SslMode::VerifyFull),
        // A machine without a CA bundle: the error says what to give instead.
        Err(error) => assert!(format!("{error:#}").contains("sslrootcert"), "{error:#}"),
    }
    let weaker = pg_connect::parse("postgres://db/archive?sslmode=require&sslrootcert=system");
    match weaker {
        Ok(target) => panic!("require with system roots parsed as {:?}", target.sslmode),
        Err(error) => assert!(
            format!("{error:#}").contains("may not be used with sslrootcert=system"),
            "{error:#}"
        ),
    }
}
