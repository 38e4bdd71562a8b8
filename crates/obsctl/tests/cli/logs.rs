//! `logs` against a real container: an image built here `FROM scratch` with Debian's
//! busybox-static, a container that prints numbered lines. No registry is needed.

use std::path::Path;
use std::process::Command;

use obs_model::ContainerLogs;
use obs_testkit::tool;

use crate::support::{obsctl, unique, until_output, Watcher};

/// Run the docker CLI; fail the test with its stderr if it fails.
fn docker(args: &[&str]) -> String {
    let output = Command::new(tool("docker"))
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("docker {args:?}: {error}"));
    assert!(
        output.status.success(),
        "docker {args:?} failed: {} (these tests need a running Docker engine)",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The image and the container, removed on drop.
struct Printer {
    image: String,
    container: String,
}

impl Printer {
    /// A container that prints `line 1` … `line 8` (the last on stderr), then sleeps.
    fn start() -> Printer {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "/bin/busybox is missing: install Debian's busybox-static (scripts/install-test-deps.sh)"
        );
        let context = tempfile::tempdir().expect("a build context");
        std::fs::copy(busybox, context.path().join("busybox")).expect("copying busybox");
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
        )
        .expect("the Dockerfile");
        let image = format!("{}:test", unique("printer"));
        docker(&[
            "build",
            "-q",
            "-t",
            &image,
            &context.path().to_string_lossy(),
        ]);
        let printer = Printer {
            image,
            container: unique("printer"),
        };
        docker(&[
            "run",
            "-d",
            "--name",
            &printer.container,
            &printer.image,
            "sh",
            "-c",
            // Docker orders the two streams by timestamp only: let stdout land first.
            "for i in 1 2 3 4 5 6 7; do echo line $i; done; /bin/busybox sleep 0.5; \
             echo line 8 >&2; exec /bin/busybox sleep 600",
        ]);
        printer
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.container])
            .output();
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

#[tokio::test]
async fn logs_shows_a_real_containers_last_lines() {
    let printer = Printer::start();
    let watcher = Watcher::start_with(&[("DOCKER_WATCH", "on")]).await;
    let url = &watcher.url;
    let name = &printer.container;

    let text = until_output(
        &watcher,
        &["logs", name, "--lines", "3"],
        "the container's lines",
        |text| text.contains("line 8"),
    )
    .await;
    assert_eq!(
        text, "line 6\nline 7\nline 8\n",
        "stdout and stderr, last 3"
    );

    let logs: ContainerLogs = obsctl(url, &["--json", "logs", name, "-n", "2"])
        .await
        .json();
    assert_eq!(logs.lines, ["line 7", "line 8"]);

    // The container shows in status too.
    let status = obsctl(url, &["status"]).await;
    let row = status
        .ok()
        .lines()
        .find(|l| l.contains(name.as_str()))
        .unwrap_or_else(|| panic!("{status:#?}"))
        .to_string();
    assert!(row.contains("running"), "{row}");

    let missing = obsctl(url, &["logs", &unique("absent")]).await;
    let line = missing.failure(1);
    assert!(
        line.starts_with("obsctl: watcher refused GET /logs (404 not_found)"),
        "{line}"
    );
}

#[tokio::test]
async fn logs_without_docker_is_one_clear_line() {
    let watcher = Watcher::start().await;
    let run = obsctl(&watcher.url, &["logs", "web"]).await;
    let line = run.failure(1);
    assert!(
        line.starts_with("obsctl: watcher refused GET /logs (503 unavailable)"),
        "{line}"
    );
    let run = obsctl(&watcher.url, &["logs", "bad name"]).await;
    assert!(
        run.failure(1).contains("(400 invalid_field): container:"),
        "{run:#?}"
    );
}
