//! A full disk, for real: the curator's STATE_DIR on a 2 MB tmpfs that a filler file fills to
//! the last byte. What was found before the one commit path: a 500, a torn journal line, an
//! acknowledgement lost at the next restart, and the sender's retry answered
//! `deduplicated` so the incident was never saved or forwarded. Now: 503 saying nothing was
//! stored; once space is freed, the retry opens the incident and forwards it, the
//! acknowledgement holds, and both survive a SIGKILL.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use obs_testkit::receiver::Receiver;
use obs_testkit::{binary, client, eventually, free_port, ChildGuard};
use serde_json::{json, Value};

const PATIENCE: Duration = Duration::from_secs(30);

/// A tmpfs of `size` mounted on a fresh folder; unmounted when dropped.
struct SmallDisk {
    folder: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let folder = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(folder.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a {size} tmpfs needs root (CI runs as root): {status}"
        );
        SmallDisk { folder }
    }

    fn path(&self) -> &Path {
        self.folder.path()
    }

    /// Write a filler file until the disk refuses another byte.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        let mut byte = [0u8; 1];
        while file.write_all(&byte).is_ok() {
            byte[0] = byte[0].wrapping_add(1);
        }
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.folder.path()).status();
    }
}

struct Curator {
    port: u16,
    state: PathBuf,
    downstream: String,
    process: Option<ChildGuard>,
}

impl Curator {
    fn start(state: &Path, downstream: &str) -> Curator {
        let mut curator = Curator {
            port: free_port(),
            state: state.to_path_buf(),
            downstream: downstream.to_string(),
            process: None,
        };
        curator.launch();
        curator
    }

    fn launch(&mut self) {
        let child = Command::new(binary("curator"))
            .env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", self.port.to_string())
            .env("STATE_DIR", &self.state)
            .env("LOG_LEVEL", "error")
            .env("PLANNER_URL", &self.downstream)
            .env("ARCHIVIST_URL", &self.downstream)
            .env("OUTBOX_RETRY_MAX_SECONDS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the curator starts");
        self.process = Some(ChildGuard(Some(child)));
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_ready(&self) {
        let url = self.url("/readyz");
        eventually("the curator ready", PATIENCE, || {
            let request = client().get(&url).send();
            async move { (request.await.ok()?.status() == 200).then_some(()) }
        })
        .await;
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = client()
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("the curator answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn kill_and_restart(&mut self) {
        if let Some(process) = self.process.take() {
            process.signal(libc::SIGKILL);
        }
        self.launch();
    }
}

fn issue() -> Value {
    json!([{
        "id": "01JC3Z8Q2J6W7V2N5Y4M1K0P9R", "kind": "oom_killed", "service": "api",
        "subject": "api-1", "severity": "critical", "state": "open",
        "message": "api-1 was killed: out of memory (limit 256 MiB)",
        "recommendation": "Raise the memory limit or find the leak",
        "first_seen": "2026-01-02T03:04:05Z", "last_seen": "2026-01-02T03:04:05Z",
        "count": 1, "facts": {"exit_code": 137}
    }])
}

#[actix_web::test]
async fn a_full_disk_refuses_with_503_and_the_retry_is_applied_forwarded_and_kept() {
    let downstream = Receiver::start().await;
    let disk = SmallDisk::mount("2m");
    let mut curator = Curator::start(disk.path(), &downstream.url);
    curator.wait_ready().await;

    let filler = disk.fill();
    let (status, body) = curator.post("/v1/issues", &issue()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing was stored")),
        "{body}"
    );
    let listed = client()
        .get(curator.url("/v1/incidents?state=open"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        listed["incidents"].as_array().map(Vec::len),
        Some(0),
        "nothing changed: {listed}"
    );

    // Space again: the sender's retry is applied, not answered as a duplicate.
    std::fs::remove_file(filler).unwrap();
    let (status, tally) = curator.post("/v1/issues", &issue()).await;
    assert_eq!(status, 200, "{tally}");
    assert_eq!(tally["opened"], 1, "{tally}");
    let forwarded = downstream.wait_for("/v1/incidents", 1).await;
    let incident_id = forwarded[0]["id"].as_str().unwrap().to_string();

    // An acknowledgement on a disk that fills again is refused, then applied and kept.
    let filler = disk.fill();
    let (status, body) = curator
        .post(
            &format!("/v1/incidents/{incident_id}/ack"),
            &json!({"by": "alice"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    std::fs::remove_file(filler).unwrap();
    let (status, body) = curator
        .post(
            &format!("/v1/incidents/{incident_id}/ack"),
            &json!({"by": "alice"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    curator.kill_and_restart();
    curator.wait_ready().await;
    let incident = client()
        .get(curator.url(&format!("/v1/incidents/{incident_id}")))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(incident["state"], "acknowledged", "{incident}");
    assert_eq!(incident["acknowledged_by"], "alice", "{incident}");
}
