"""The role images, built here the way CI builds them (`make images`: the Dockerfile's
`prebuilt` target, FROM scratch + the static release binary, nothing pulled), then run as
real containers on this machine's Docker engine: /healthz, the HEALTHCHECK, the numeric
non-root user, the size, and a clean exit on `docker stop`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests

from shipping import ROLES, ROOT, release_binary, run, tool, wait_until

pytestmark = pytest.mark.timeout(1800)

PREFIX = "obs-fleet-test"
TAG = f"pytest-{os.getpid()}"
# The target: every role image under 20 MB.
TARGET_BYTES = 20 * 1000 * 1000
ROLE_PORTS = {role: (8001 + i, 9001 + i) for i, role in enumerate(ROLES)}
RUNTIME_USER = "65532:65532"


def docker(*args: str, timeout: float = 60, check: bool = True):
    return run([tool("docker"), *args], timeout=timeout, check=check)


def inspect(kind: str, name: str) -> dict:
    return json.loads(docker(kind, "inspect", name).stdout)[0]


@pytest.fixture(scope="module")
def images():
    release_binary("obs-stack")  # builds the release binaries once for the whole session
    run(["make", "--no-print-directory", "images", f"IMAGE_PREFIX={PREFIX}", f"IMAGE_TAG={TAG}"], timeout=900, cwd=ROOT)
    tags = {role: f"{PREFIX}/{role}:{TAG}" for role in ROLES}
    yield tags
    docker("rmi", "--force", *tags.values(), check=False)


@pytest.fixture
def container(request):
    """Names of the containers a test starts; removed afterwards whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        docker("rm", "--force", name, check=False)


def published_port(name: str, port: int) -> int:
    ports = inspect("container", name)["NetworkSettings"]["Ports"][f"{port}/tcp"]
    (binding,) = [p for p in ports if p["HostIp"] == "127.0.0.1"]
    return int(binding["HostPort"])


@pytest.mark.parametrize("role", ROLES)
def test_image_is_a_small_scratch_image_running_as_a_numeric_non_root_user(images, role):
    image = inspect("image", images[role])
    assert image["Size"] < TARGET_BYTES, f"{role} image is {image['Size'] / 1e6:.1f} MB"
    config = image["Config"]
    assert config["User"] == RUNTIME_USER
    assert config["Entrypoint"] == ["/usr/local/bin/role"]
    assert config["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/role", "healthcheck"]
    assert "STATE_DIR=/var/lib/obs-fleet" in config["Env"]
    # Reached through the container's own network namespace (the binaries default to loopback).
    assert "HOST=0.0.0.0" in config["Env"]
    assert config["Labels"]["org.opencontainers.image.title"] == f"obs-fleet {role}"
    assert config["Labels"]["org.opencontainers.image.version"] == "0.1.0"
    # FROM scratch: the passwd/group files, the state folder and the binary; no base layers.
    assert len(image["RootFS"]["Layers"]) == 3
    assert image["Architecture"] == "amd64" and image["Os"] == "linux"


@pytest.mark.parametrize("role", ROLES)
def test_the_binary_is_the_entrypoint(images, role):
    result = docker("run", "--rm", images[role], "--version")
    assert result.stdout.startswith(f"{role} 0.1.0 (")
    # `healthcheck` with nothing listening exits 1 with one line: the HEALTHCHECK can fail.
    result = docker("run", "--rm", "--network", "none", images[role], "healthcheck", check=False)
    assert result.returncode == 1 and result.stderr.startswith("healthcheck:")


@pytest.mark.parametrize("role", ROLES)
def test_container_serves_becomes_healthy_and_stops_cleanly(images, role, container, tmp_path: Path):
    port, metrics_port = ROLE_PORTS[role]
    name = f"obs-fleet-test-{role}-{os.getpid()}"
    container.append(name)
    # As the chart runs it: read-only root filesystem, no capabilities, state on a volume.
    docker(
        "run", "--detach", "--name", name,
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--tmpfs", "/var/lib/obs-fleet:rw,uid=65532,gid=65532,mode=0700",
        "--env", f"METRICS_PORT={metrics_port}", "--env", "TRACE_ID=image-test",
        "--health-interval", "1s", "--health-timeout", "3s", "--health-retries", "3",
        "--publish", f"127.0.0.1::{port}", "--publish", f"127.0.0.1::{metrics_port}",
        images[role],
    )  # fmt: skip
    base = f"http://127.0.0.1:{published_port(name, port)}"

    def healthz():
        response = requests.get(f"{base}/healthz", timeout=2)
        return response if response.status_code == 200 else None

    response = wait_until(healthz, 30, f"{role} /healthz through the published port")
    assert response.json() == {"status": "ok"}
    assert requests.get(f"{base}/readyz", timeout=2).status_code == 200
    metrics = requests.get(f"http://127.0.0.1:{published_port(name, metrics_port)}/metrics", timeout=2).text
    assert f'hello_ai_build_info{{revision="' in metrics and f'role="{role}"' in metrics

    # Docker runs the image's HEALTHCHECK (`role healthcheck`) inside the container.
    wait_until(
        lambda: inspect("container", name)["State"]["Health"]["Status"] == "healthy",
        30,
        f"{role} container to turn healthy",
    )

    # The process really runs as 65532:65532 (read from the host's /proc).
    pid = inspect("container", name)["State"]["Pid"]
    status = Path(f"/proc/{pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    gids = next(line for line in status.splitlines() if line.startswith("Gid:")).split()[1:]
    assert set(uids) == {"65532"} and set(gids) == {"65532"}

    # docker stop: SIGTERM, drain, exit 0, well before Docker would SIGKILL (10 s).
    started = time.monotonic()
    docker("stop", "--time", "10", name, timeout=30)
    elapsed = time.monotonic() - started
    state = inspect("container", name)["State"]
    assert state["ExitCode"] == 0 and not state["OOMKilled"], state
    assert elapsed < 8, f"{role} took {elapsed:.1f}s to stop"
    logs = docker("logs", name).stdout + docker("logs", name).stderr
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert lines, f"no JSON log lines:\n{logs}"
    assert "image-test" in logs, "TRACE_ID is not on the log lines"
    assert "panicked" not in logs
