//! A throwaway, real PostgreSQL for tests: Debian's server binaries (`postgresql` package,
//! installed by scripts/install-test-deps.sh), a fresh data folder, a free loopback port.
//!
//! ```text
//! let server = obs_testkit::postgres::shared();   // one per test process, started on first use
//! let url = server.create_database()?;           // a fresh, empty database for this test
//! ```
//!
//! PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user the
//! package creates. It listens on 127.0.0.1 only, with trust authentication (nothing else
//! can reach it), and keeps the stock durability settings (fsync on): tests that rely on what
//! a commit promises get the real promise.
//!
//! Cleanup: [`PostgresServer`] stops the server (immediate shutdown) and deletes its folder
//! when dropped; [`shared`] does the same at process exit. If the test process is killed
//! outright, the kernel still stops the server (PR_SET_PDEATHSIG).

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

const INSTALL_HINT: &str =
    "PostgreSQL is not installed: run scripts/install-test-deps.sh (make test-deps), \
     which installs Debian's postgresql package";

/// A running PostgreSQL server owned by the test.
pub struct PostgresServer {
    port: u16,
    bin: PathBuf,
    child: Mutex<Option<Child>>,
    /// Holds the data folder and the server log; deleted after the server stops.
    folder: Mutex<Option<tempfile::TempDir>>,
    databases: AtomicUsize,
}

impl PostgresServer {
    /// initdb a fresh cluster and start it on a free loopback port; waits until it accepts
    /// connections.
    pub fn start() -> anyhow::Result<PostgresServer> {
        PostgresServer::start_with(&[], &[])
    }

    /// [`start`](Self::start), with `files` written into the data folder first and
    /// `settings` passed as `-c name=value`. The files are owned by the server's user with
    /// mode 0600, as PostgreSQL demands of a private key, and a relative path in a setting
    /// resolves against the data folder. For TLS:
    ///
    /// ```text
    /// PostgresServer::start_with(
    ///     &[("ssl", "on"), ("ssl_cert_file", "server.crt"), ("ssl_key_file", "server.key")],
    ///     &[("server.crt", cert_pem.as_bytes()), ("server.key", key_pem.as_bytes())],
    /// )
    /// ```
    pub fn start_with(
        settings: &[(&str, &str)],
        files: &[(&str, &[u8])],
    ) -> anyhow::Result<PostgresServer> {
        let bin = server_binaries()?;
        let folder = tempfile::Builder::new()
            .prefix("obs-postgres-")
            .tempdir()
            .context("creating the PostgreSQL folder")?;
        let owner = server_user()?;
        if let Some((uid, gid)) = owner {
            chown(folder.path(), uid, gid)?;
        }
        let data = folder.path().join("data");
        let output = run_as(
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
                // The cluster is thrown away after the run: skip initdb's own fsyncs. The
                // server itself keeps fsync on.
                .arg("--no-sync")
                .env("LC_ALL", "C"),
            owner,
        )
        .output()
        .context("running initdb")?;
        check("initdb", &output)?;
        for (name, contents) in files {
            write_private(&data.join(name), contents, owner)?;
        }

        // A port can be taken between choosing and binding it; try a few.
        let mut last_error = None;
        for _ in 0..3 {
            let port = crate::free_port();
            let server = PostgresServer {
                port,
                bin: bin.clone(),
                child: Mutex::new(None),
                folder: Mutex::new(None),
                databases: AtomicUsize::new(0),
            };
            match server.launch(&data, folder.path(), owner, settings) {
                Ok(child) => {
                    *lock(&server.child) = Some(child);
                    *lock(&server.folder) = Some(folder);
                    return Ok(server);
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
    }

    fn launch(
        &self,
        data: &Path,
        folder: &Path,
        owner: Option<(u32, u32)>,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<Child> {
        let log_path = folder.join("postgres.log");
        let log = File::create(&log_path).context("creating the PostgreSQL log")?;
        let mut command = Command::new(self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(data)
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=32MB",
            ])
            // After the defaults above: a later -c wins, so a test can override them.
            .args(
                settings
                    .iter()
                    .flat_map(|(name, value)| ["-c".to_string(), format!("{name}={value}")]),
            )
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        run_as(&mut command, owner);
        // SAFETY: prctl(2) is async-signal-safe; it only sets a flag on the child.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = spawn_from_lasting_thread(command).context("starting postgres")?;

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .context("running pg_isready")?;
            if ready.success() {
                return Ok(child);
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "postgres exited ({status}) before accepting connections; log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "postgres did not accept connections within 30 s; log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Create a fresh, empty database and return its URL: one per test keeps tests apart
    /// while they share the server.
    pub fn create_database(&self) -> anyhow::Result<String> {
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            self.databases.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// Run `sql` with psql in `database`; returns psql's unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", database, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .context("running psql")?;
        check(&format!("psql -c {sql:?}"), &output)?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Immediate shutdown (SIGQUIT), then delete the data. Idempotent.
    pub fn stop(&self) {
        if let Some(mut child) = lock(&self.child).take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGQUIT);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        lock(&self.folder).take();
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One server for the whole test process, started on first use and stopped at exit.
/// Panics, saying how to install PostgreSQL, if it cannot start: a PostgreSQL test never
/// skips.
pub fn shared() -> &'static PostgresServer {
    static SHARED: OnceLock<PostgresServer> = OnceLock::new();
    extern "C" fn stop_shared() {
        if let Some(server) = SHARED.get() {
            server.stop();
        }
    }
    SHARED.get_or_init(|| {
        let server = PostgresServer::start()
            .unwrap_or_else(|error| panic!("starting the test PostgreSQL: {error:#}"));
        // SAFETY: registering a plain extern "C" function; statics are never dropped, so
        // this is how the shared server is stopped when the test process exits normally.
        unsafe {
            libc::atexit(stop_shared);
        }
        server
    })
}

/// The newest Debian server binaries (`/usr/lib/postgresql/<version>/bin`), or initdb's
/// folder on PATH elsewhere.
fn server_binaries() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
        .context(INSTALL_HINT)
}

/// As root: the `postgres` user's (uid, gid). Otherwise None: run as ourselves.
fn server_user() -> anyhow::Result<Option<(u32, u32)>> {
    // SAFETY: geteuid cannot fail; getpwnam returns a pointer into static storage that we
    // read at once, before any other call could overwrite it.
    unsafe {
        if libc::geteuid() != 0 {
            return Ok(None);
        }
        let entry = libc::getpwnam(c"postgres".as_ptr());
        if entry.is_null() {
            bail!("no 'postgres' user to run PostgreSQL as (it refuses root). {INSTALL_HINT}");
        }
        Ok(Some(((*entry).pw_uid, (*entry).pw_gid)))
    }
}

fn run_as(command: &mut Command, owner: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}

/// Write a file only the server's user can read (PostgreSQL refuses a key others can).
fn write_private(path: &Path, contents: &[u8], owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    if let Some((uid, gid)) = owner {
        chown(path, uid, gid)?;
    }
    Ok(())
}

fn chown(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::chown(c_path.as_ptr(), uid, gid) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("chown {}", path.display()));
    }
    Ok(())
}

fn check(what: &str, output: &Output) -> anyhow::Result<()> {
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process; a
/// test's thread ends with the test. So children that must live as long as the process are
/// forked by one thread that lives as long as the process.
fn spawn_from_lasting_thread(command: Command) -> anyhow::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("obs-testkit-spawner".into())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawning a thread");
        Mutex::new(requests)
    });
    let (reply, answer) = mpsc::channel();
    lock(spawner)
        .send((command, reply))
        .context("the spawner thread is gone")?;
    Ok(answer.recv().context("the spawner thread is gone")??)
}
