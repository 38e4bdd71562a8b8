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
    assert images["permissions"]["contents"] == "read" and images["permissions"]["packages"] == "write"
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


# ---- supply chain ---------------------------------------------------------------------------

# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z`: a tag can be moved to other code, a commit
# cannot; the comment says which release the commit is.
PINNED = re.compile(r"^\s*-?\s*uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?:\s+#\s*(?P<version>\S+))?\s*$")


def uses_lines() -> list[tuple[str, int, str]]:
    """(workflow, line number, line) of every `uses:` in every workflow."""
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.match(r"^\s*-?\s*uses:", line):
                found.append((path.name, number, line))
    return found


def test_every_action_is_pinned_by_a_full_commit_sha_with_its_version_noted():
    lines = uses_lines()
    assert len(lines) >= 15, lines
    problems = []
    versions: dict[str, set[tuple[str, str]]] = {}
    for name, number, line in lines:
        match = PINNED.match(line)
        where = f"{name}:{number}: {line.strip()}"
        if not match:
            problems.append(f"{where}: not `uses: owner/repo@sha # version`")
            continue
        if not re.fullmatch(r"[0-9a-f]{40}", match["ref"]):
            problems.append(f"{where}: pinned by {match['ref']!r}, not a full commit SHA")
        if not (match["version"] and re.fullmatch(r"v\d+(\.\d+){0,2}", match["version"])):
            problems.append(f"{where}: no `# vX.Y.Z` comment naming the release")
        versions.setdefault(match["action"], set()).add((match["ref"], match["version"] or ""))
    assert problems == []
    # One action, one pin: two SHAs for the same action would be two versions to audit.
    assert {action: pins for action, pins in versions.items() if len(pins) > 1} == {}
    # No local or docker:// action slips past the pattern.
    assert not [line for _, _, line in lines if line.split("uses:", 1)[1].strip().startswith(("./", "docker://"))]


def test_the_pin_check_refuses_tags_short_shas_and_missing_versions():
    for line in (
        "      - uses: actions/checkout@v5",
        "      - uses: actions/checkout@fbc6f39 # v5.1.0",
        "      - uses: actions/checkout@fbc6f3992d24b796d5a048ff273f7fcc4a7b6c09",
    ):
        match = PINNED.match(line)
        assert not (match and re.fullmatch(r"[0-9a-f]{40}", match["ref"]) and match["version"]), line
    assert PINNED.match("      - uses: actions/checkout@fbc6f3992d24b796d5a048ff273f7fcc4a7b6c09 # v5.1.0")


def test_pushed_images_carry_an_sbom_and_provenance_and_are_signed_keylessly():
    document = workflow("images.yml")
    images = document["jobs"]["images"]
    assert images["permissions"] == {"contents": "read", "packages": "write", "id-token": "write", "attestations": "write"}
    build = step_using(images, "docker/build-push-action")
    assert build["id"] == "build"
    assert build["with"]["sbom"] is True and build["with"]["provenance"] == "mode=max"
    names = [s.get("name", s.get("uses", "")) for s in steps(images)]
    (sign,) = [s for s in steps(images) if "cosign sign" in s.get("run", "")]
    # Keyless: no key, the job's OIDC identity; by digest, what was pushed.
    assert "--key" not in sign["run"] and "--yes" in sign["run"]
    assert sign["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}" and "@${DIGEST}" in sign["run"]
    assert sign["if"] == "github.event_name == 'push'"
    installer = step_using(images, "sigstore/cosign-installer")
    assert names.index(installer["uses"]) < names.index(sign["name"])
    attest = step_using(images, "actions/attest-build-provenance")
    assert attest["with"]["subject-digest"] == "${{ steps.build.outputs.digest }}"
    assert attest["with"]["subject-name"] == "${{ steps.name.outputs.image }}"
    assert attest["with"]["push-to-registry"] is True and attest["if"] == "github.event_name == 'push'"
    # Signing and attesting come after the push they are about.
    assert names.index(build["uses"]) < names.index(sign["name"]) < names.index(attest["uses"])


def test_on_version_tags_the_chart_is_pushed_as_a_signed_oci_artifact():
    document = workflow("images.yml")
    chart = document["jobs"]["chart"]
    assert chart["needs"] == "images"
    assert chart["if"] == "github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')"
    assert chart["permissions"] == {"contents": "read", "packages": "write", "id-token": "write", "attestations": "write"}
    text = all_run_text({"jobs": {"chart": chart}})
    assert "helm package charts/obs-fleet" in text
    assert 'helm push "$PACKAGE" "oci://$REPOSITORY"' in text
    assert "appVersion" in text, "the tag must match the image tag the chart deploys"
    (sign,) = [s for s in steps(chart) if "cosign sign" in s.get("run", "")]
    assert "--key" not in sign["run"] and "@${DIGEST}" in sign["run"]
    assert sign["env"]["DIGEST"] == "${{ steps.push.outputs.digest }}"
    attest = step_using(chart, "actions/attest-build-provenance")
    assert attest["with"]["subject-digest"] == "${{ steps.push.outputs.digest }}"
    # The chart's repository is the one the docs tell people to pull from.
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert "oci://ghcr.io/" in docs and "/charts/obs-fleet" in docs
    assert "cosign verify" in docs and "gh attestation verify" in docs
