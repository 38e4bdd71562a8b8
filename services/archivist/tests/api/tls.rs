//! The archivist on a PostgreSQL that serves TLS, with a certificate for `localhost` from a
//! throwaway CA (made with the openssl command, which Debian's postgresql package brings):
//! `sslmode=verify-full` stores and reads records, every connection the archivist opens is
//! encrypted (the server says so), and a CA that did not sign the server's certificate stops
//! the start with one line.

use std::path::Path;
use std::process::Command;

use obs_testkit::postgres::PostgresServer;
use serde_json::Value;

use crate::helpers::{at, canonical, record, sorted, try_start, TestArchive};
use archivist::ArchiveLocation;

/// Run `openssl` with `command`'s words as arguments, in `folder`.
fn openssl(folder: &Path, command: &str) {
    let output = Command::new("openssl")
        .args(command.split_whitespace())
        .current_dir(folder)
        .output()
        .expect("the openssl command runs");
    assert!(
        output.status.success(),
        "openssl {command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, another CA that signed nothing, and a server certificate for `localhost` (only the
/// name: verify-full against 127.0.0.1 would fail).
fn make_pki(folder: &Path) {
    const EC: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for ca in ["ca", "other-ca"] {
        openssl(
            folder,
            &format!(
                "req -x509 {EC} -keyout {ca}.key -out {ca}.pem -days 2 -subj /CN=obs-fleet-{ca} \
                 -addext basicConstraints=critical,CA:TRUE \
                 -addext keyUsage=critical,keyCertSign,cRLSign"
            ),
        );
    }
    openssl(
        folder,
        &format!("req -new {EC} -keyout server.key -out server.csr -subj /CN=localhost"),
    );
    std::fs::write(
        folder.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("the extensions file");
    openssl(
        folder,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.crt \
         -days 2 -extfile server.ext",
    );
}

#[actix_web::test]
async fn the_archive_on_postgres_over_tls_with_verify_full() {
    let pki = tempfile::tempdir().expect("a folder for the certificates");
    make_pki(pki.path());
    let read = |name: &str| std::fs::read(pki.path().join(name)).expect("a PEM file");
    let (cert, key) = (read("server.crt"), read("server.key"));
    let server = PostgresServer::start_with(
        &[
            ("ssl", "on"),
            ("ssl_cert_file", "server.crt"),
            ("ssl_key_file", "server.key"),
        ],
        &[("server.crt", &cert), ("server.key", &key)],
    )
    .expect("a PostgreSQL serving TLS");
    server
        .psql("postgres", "CREATE DATABASE archive")
        .expect("a database");
    let url = |ca: &str| {
        format!(
            "postgres://postgres@localhost:{}/archive?sslmode=verify-full&sslrootcert={}\
             &application_name=archivist_tls&connect_timeout=10",
            server.port(),
            pki.path().join(ca).display()
        )
    };

    let state = tempfile::tempdir().expect("a state folder");
    let location = ArchiveLocation::Postgres(url("ca.pem"));
    let app = try_start(location.clone(), state.path(), |_, _| {})
        .await
        .expect("the archivist starts over verify-full");
    let archive = TestArchive::new(app, location);
    let batch: Vec<Value> = (0..20).map(|n| record("event", "api", at(n))).collect();
    assert_eq!(archive.append(&batch).await, (20, 0));
    assert_eq!(archive.all("", 100).await, sorted(canonical(&batch)));
    assert_eq!(archive.append(&batch).await, (0, 20));

    // Every session the archivist holds (its pool and obs-core's) is encrypted.
    let sessions = server
        .psql(
            "postgres",
            "SELECT count(*) || ' ' || count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'archivist_tls'",
        )
        .expect("the server's sessions");
    let (all, encrypted) = sessions.split_once(' ').expect("two counts");
    assert!(all.parse::<u32>().expect("a count") >= 2, "{sessions}");
    assert_eq!(all, encrypted, "every session is TLS: {sessions}");
    archive.stop().await;

    // A CA that did not sign the server's certificate: refused at start, one line.
    let error = match try_start(
        ArchiveLocation::Postgres(url("other-ca.pem")),
        state.path(),
        |_, _| {},
    )
    .await
    {
        Ok(_) => panic!("the archivist trusted a certificate its CA did not sign"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert!(!error.contains('\n'), "one line: {error}");
}
