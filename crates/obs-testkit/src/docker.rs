//! The machine's real Docker engine for tests: images built here `FROM scratch` from
//! Debian's busybox-static (no registry, nothing pulled), containers and images with unique
//! names, removed on drop. Without an engine these helpers fail the test with a message
//! saying so; a Docker test never passes silently.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::tool;

/// DOCKER_HOST when set, else the local socket.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// A shell in a FROM-scratch image.
const BUSYBOX_DOCKERFILE: &str = "FROM scratch\n\
COPY busybox /bin/busybox\n\
RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
CMD [\"/bin/sh\"]\n";

static SEQUENCE: AtomicUsize = AtomicUsize::new(0);

/// A name no other test or run uses: `obs-test-<prefix>-<pid>-<n>-<what>`.
pub fn unique(prefix: &str, what: &str) -> String {
    format!(
        "obs-test-{prefix}-{}-{}-{what}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string())
}

/// Run the docker CLI; fail the test with its stderr if it fails. Returns stdout, trimmed.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new(tool("docker"))
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("docker {args:?}: {error}"));
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The engine must answer: Docker tests need a real one and say so.
pub fn require_engine() {
    let output = Command::new(tool("docker"))
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match output {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "the Docker engine at {} is not reachable: {} — Docker tests need a running \
             engine (start dockerd; CI machines have one)",
            docker_host(),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => panic!("cannot run the docker CLI: {error}"),
    }
}

/// Identical build contexts give identical image ids, so one test's `docker rmi` could
/// delete the image another's `docker build` is just tagging. In this process builds and
/// removals take turns; across processes each image carries its own label, so ids differ.
static IMAGE_LOCK: Mutex<()> = Mutex::new(());

fn image_lock() -> MutexGuard<'static, ()> {
    IMAGE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An image built for one test, removed on drop.
pub struct Image(pub String);

impl Image {
    /// `FROM scratch` + /bin/busybox from Debian's busybox-static, tagged `<prefix>`-unique.
    pub fn busybox(prefix: &str) -> Image {
        require_engine();
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "/bin/busybox is missing: install Debian's busybox-static (scripts/install-test-deps.sh)"
        );
        let context = tempfile::tempdir().expect("a build context");
        std::fs::write(context.path().join("Dockerfile"), BUSYBOX_DOCKERFILE)
            .expect("writing the Dockerfile");
        std::fs::copy(busybox, context.path().join("busybox")).expect("copying busybox");
        Self::build(prefix, "busybox", context.path(), &[])
    }

    /// `docker build` of `context` with `build_args` (`NAME=value`), tagged
    /// `<prefix>`-unique and labelled so no other build shares its id.
    pub fn build(prefix: &str, what: &str, context: &Path, build_args: &[&str]) -> Image {
        let name = unique(prefix, what);
        let tag = format!("{name}:test");
        let label = format!("obs-test={name}");
        let mut args = vec!["build", "-q", "--label", &label, "-t", &tag];
        for arg in build_args {
            args.extend(["--build-arg", arg]);
        }
        let context = context.to_string_lossy();
        args.push(&context);
        let _turn = image_lock();
        docker(&args);
        Image(tag)
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _turn = image_lock();
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// Containers started by one test, removed (forcibly) on drop.
#[derive(Default)]
pub struct Containers(Vec<String>);

impl Containers {
    /// `docker run -d --name <name> <options> <image> <command>`.
    pub fn run(&mut self, name: &str, options: &[&str], image: &Image, command: &[&str]) {
        self.0.push(name.to_string());
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(options);
        args.push(&image.0);
        args.extend_from_slice(command);
        docker(&args);
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(self.0.iter().map(String::as_str));
            let _ = Command::new("docker").args(&args).output();
        }
    }
}

/// `docker inspect --format <format> <container>`.
pub fn inspect(container: &str, format: &str) -> String {
    docker(&["inspect", "--format", format, container])
}
