"""The Dockerfile and the GitHub workflows: linted by the real linters (hadolint at warning
level, actionlint with shellcheck for the `run:` scripts), and checked for what they promise:
one matrix over the five roles, both platforms, GHCR pushes only on main and tags, build
cache, and CI running fmt, clippy, the tests and the chart checks.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
import yaml

from shipping import ROLES, ROOT, run, tool

pytestmark = pytest.mark.timeout(120)

WORKFLOWS = ROOT / ".github" / "workflows"
DOCKERFILE = ROOT / "Dockerfile"


def workflow(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the `on:` key as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def steps(job: dict) -> list[dict]:
    return job["steps"]


def step_using(job: dict, action: str) -> dict:
    (found,) = [s for s in steps(job) if s.get("uses", "").startswith(action + "@")]
    return found


def all_run_text(document: dict) -> str:
    return "\n".join(s.get("run", "") for job in document["jobs"].values() for s in job["steps"])


# ---- linters --------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint_at_warning_level():
    result = run([tool("hadolint"), "--failure-threshold", "warning", str(DOCKERFILE)], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # Nothing at all to say, not even style notes.
    assert result.stdout.strip() == ""


def test_workflows_pass_actionlint_with_shellcheck():
    assert shutil.which("shellcheck"), "shellcheck is not installed: actionlint would skip the run: scripts"
    result = run([tool("actionlint"), "-color=false"], check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(["shellcheck", str(ROOT / ".github" / "fetch-crd-schemas.sh")], check=False)
    assert result.returncode == 0, result.stdout


# ---- the Dockerfile -------------------------------------------------------------------------


def stages() -> list[tuple[str, str]]:
    """(image, stage name) of every FROM, in order."""
    return re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)\s+AS\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)


def test_dockerfile_stages():
    found = stages()
    # The prebuilt path comes first: the legacy builder builds every stage up to --target,
    # so nothing before it may need a base image.
    assert found[:2] == [("scratch", "base"), ("base", "prebuilt")]
    assert found[-1] == ("base", "runtime"), "the default target is the from-source image"
    text = DOCKERFILE.read_text()
    assert "ARG SERVICE" in text
    assert re.search(r"^FROM --platform=\$BUILDPLATFORM \S+ AS chef$", text, re.MULTILINE), "cross-compile, don't emulate"
    # The dependency layer: the recipe is cooked before the sources are copied in.
    builder = text[text.index("AS builder") :]
    assert builder.index("cargo chef cook") < builder.index("COPY . .")
    assert "crt-static" in text


# ---- the workflows --------------------------------------------------------------------------


def test_one_matrix_workflow_builds_all_five_images_for_both_platforms():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["ci.yml", "images.yml"]
    document = workflow("images.yml")
    assert document["on"]["push"] == {"branches": ["main"], "tags": ["v*.*.*"]}
    assert "pull_request" in document["on"]
    assert document["permissions"] == {"contents": "read"}

    binaries = document["jobs"]["binaries"]
    arches = {entry["arch"]: entry for entry in binaries["strategy"]["matrix"]["include"]}
    assert arches["amd64"]["target"] == "x86_64-unknown-linux-gnu"
    assert arches["arm64"]["target"] == "aarch64-unknown-linux-gnu"
    assert "gcc-aarch64-linux-gnu" in arches["arm64"]["cross-packages"]  # cross, not QEMU
    assert binaries["runs-on"] == "ubuntu-24.04"
    assert "make image-context" in all_run_text({"jobs": {"b": binaries}})
    step_using(binaries, "Swatinem/rust-cache")

    images = document["jobs"]["images"]
    assert images["needs"] == "binaries"
    assert images["strategy"]["matrix"]["service"] == list(ROLES)
    assert images["permissions"] == {"contents": "read", "packages": "write"}
    build = step_using(images, "docker/build-push-action")["with"]
    assert build["platforms"] == "linux/amd64,linux/arm64"
    assert build["target"] == "prebuilt" and build["file"] == "Dockerfile"
    assert "SERVICE=${{ matrix.service }}" in build["build-args"]
    assert build["push"] == "${{ github.event_name == 'push' }}"
    assert build["cache-from"] == "type=gha,scope=image-${{ matrix.service }}"
    assert build["cache-to"].startswith("type=gha,mode=max")
    login = step_using(images, "docker/login-action")
    assert login["if"] == "github.event_name == 'push'" and login["with"]["registry"] == "${{ env.REGISTRY }}"
    assert document["env"]["REGISTRY"] == "ghcr.io"
    tags = step_using(images, "docker/metadata-action")["with"]["tags"]
    for kind in ("type=semver,pattern={{version}}", "type=sha", "type=edge,branch=main"):
        assert kind in tags
    step_using(images, "docker/setup-buildx-action")


def test_ci_runs_fmt_clippy_tests_and_chart_checks():
    document = workflow("ci.yml")
    assert document["on"]["push"] == {"branches": ["main"]} and "pull_request" in document["on"]
    text = all_run_text(document)
    for command in (
        "cargo fmt --all -- --check",
        "cargo clippy --workspace --all-targets -- -D warnings",
        "make test-rust",
        "make test-python",
        "make chart-test",
        "make lint-shipping",
        "./scripts/install-test-deps.sh",
        "./.github/fetch-crd-schemas.sh",
    ):
        assert command in text, command
    for job in document["jobs"].values():
        assert job["timeout-minutes"] <= 60


def test_the_make_targets_the_workflows_call_exist():
    for target in ("image-context", "images", "chart-test", "lint-shipping", "test-rust", "test-python"):
        run(["make", "--no-print-directory", "--dry-run", target], cwd=ROOT)
    cross = run(
        ["make", "--no-print-directory", "--dry-run", "image-context", "TARGET=aarch64-unknown-linux-gnu", "STRIP=aarch64-linux-gnu-strip"],
        cwd=ROOT,
    ).stdout
    assert "--target aarch64-unknown-linux-gnu" in cross
    assert "aarch64-linux-gnu-strip --strip-all -o target/image-context/bin/arm64/$binary" in cross


# ---- what each make target installs and builds ----------------------------------------------


def installs(tmp_path, make_target: str) -> list[str]:
    """The Debian packages `make <target>` would install on a machine that has none: its
    install step run for real against a dpkg that knows no package and an apt-get that
    records what it is asked for."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    asked = tmp_path / "apt-get.log"
    asked.write_text("")
    (fake / "dpkg").write_text("#!/bin/sh\nexit 1\n")
    (fake / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {asked}\n')
    for script in fake.iterdir():
        script.chmod(0o755)
    dry = run(["make", "--no-print-directory", "--dry-run", make_target], cwd=ROOT).stdout.splitlines()
    (step,) = [line for line in dry if "install-test-deps.sh" in line]
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    run(["bash", "-c", step], cwd=ROOT, env=env)
    installed = [line.split() for line in asked.read_text().splitlines() if line.startswith("install")]
    return sorted(word for line in installed for word in line if not word.startswith("-") and word != "install")


def test_each_make_target_installs_only_what_it_needs(tmp_path):
    assert installs(tmp_path, "chart-render") == []
    assert installs(tmp_path, "chart-test") == ["prometheus"]
    assert installs(tmp_path, "lint-shipping") == ["shellcheck"]
    everything = installs(tmp_path, "test-deps")
    for package in ("prometheus", "postgresql", "chromium", "shellcheck", "busybox-static"):
        assert package in everything


def test_make_run_builds_what_the_readme_builds():
    """One build serves both: `make run` after the README's build command must not rebuild
    (a different package set resolves features differently and recompiles crates)."""
    readme = (ROOT / "README.md").read_text()
    assert "cargo build --release " in readme or "cargo build --release\n" in readme
    dry = run(["make", "--no-print-directory", "--dry-run", "run"], cwd=ROOT).stdout.splitlines()
    builds = [line for line in dry if line.startswith("cargo ")]
    assert builds == ["cargo build --release"], builds
    assert dry[-1] == "./target/release/obs-stack"


def test_the_readme_leads_a_newcomer_to_run_obsctl_and_deploy():
    readme = (ROOT / "README.md").read_text()
    first_screen = readme[: readme.index("## Running")]
    for promise in ("make run", "target/release/obsctl", "docs/obsctl.md", "docs/deploy.md", "charts/obs-fleet"):
        assert promise in first_screen, promise
    # Every relative link leads somewhere.
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme):
        assert (ROOT / target).exists(), target
    for anchor in re.findall(r"\]\(#([^)]+)\)", readme):
        headings = [line.lstrip("#").strip().lower().replace(" ", "-") for line in readme.splitlines() if line.startswith("#")]
        assert anchor in headings, anchor
