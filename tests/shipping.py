"""Helpers shared by the shipping tests (chart, images, workflows, Prometheus end to end).

Everything here drives the real tools: Helm's Go SDK (helm-python-sdk), kubernetes-validate,
the JSON schemas in ../shared/schemas, promtool/prometheus, docker. A missing tool is a
failure, never a skip: CI installs them all through scripts/install-test-deps.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "obs-fleet"
CHART_TESTS = ROOT / "tests" / "chart"
SCHEMAS = ROOT.parent / "shared" / "schemas"
# Custom resources ../shared/schemas lacks (the Gateway API's HTTPRoute), vendored: CI has no
# internet to fetch them from (tests/chart/schemas/README.md says where they come from).
VENDORED_SCHEMAS = CHART_TESTS / "schemas"
VENV_BIN = ROOT / ".venv" / "bin"

ROLES = ("watcher", "curator", "planner", "synthesizer", "archivist")
RELEASE = "obs-fleet"
NAMESPACE = "monitoring"
# The Kubernetes version core kinds are validated against (the chart needs >= 1.25).
KUBE_VERSION = "1.30.0"


def tool(name: str) -> str:
    """Absolute path of a command-line tool, from the venv first, else PATH; fails if absent."""
    candidate = VENV_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run scripts/install-test-deps.sh"
    return found


def run(args: list[str], timeout: float = 120, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; with check, fail showing what it printed."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert result.returncode == 0, (
            f"{' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - kept for the failure message
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- Helm ---------------------------------------------------------------------------------


def helm():
    import helm_python  # fails loudly if helm-python-sdk is missing

    return helm_python


def value_set(name: str) -> dict:
    """The values of tests/chart/values/<name>.yaml."""
    return yaml.safe_load((CHART_TESTS / "values" / f"{name}.yaml").read_text()) or {}


def value_set_names() -> list[str]:
    return sorted(path.stem for path in (CHART_TESTS / "values").glob("*.yaml"))


def render_files(values: dict | None = None, name: str = RELEASE, namespace: str = NAMESPACE) -> dict[str, str]:
    """The chart rendered offline by Helm's SDK: template path -> manifest text."""
    with helm().Chart.load(str(CHART)) as chart:
        return chart.render(values or {}, name=name, namespace=namespace, is_install=True)


def render(values: dict | None = None, name: str = RELEASE, namespace: str = NAMESPACE) -> list[dict]:
    """Every object the chart renders (NOTES.txt excluded), parsed."""
    objects = []
    for path, text in sorted(render_files(values, name, namespace).items()):
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                document.setdefault("__template__", path)
                objects.append(document)
    return objects


def find(objects: list[dict], kind: str, name: str | None = None, api_version: str | None = None) -> list[dict]:
    return [
        o
        for o in objects
        if o["kind"] == kind
        and (name is None or o["metadata"]["name"] == name)
        and (api_version is None or o["apiVersion"] == api_version)
    ]


def one(objects: list[dict], kind: str, name: str, api_version: str | None = None) -> dict:
    found = find(objects, kind, name, api_version)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def rules_file(objects: list[dict]) -> str:
    """The bundled Prometheus's rule file text (from its ConfigMap)."""
    config = one(objects, "ConfigMap", f"{RELEASE}-prometheus")
    return config["data"]["obs-fleet.rules.yml"]


def prometheus_yml(objects: list[dict]) -> str:
    config = one(objects, "ConfigMap", f"{RELEASE}-prometheus")
    return config["data"]["prometheus.yml"]


# ---- validation ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _custom_validator(api_version: str, kind: str):
    from jsonschema import Draft202012Validator

    group, _, version = api_version.rpartition("/")
    paths = [folder / group / f"{kind.lower()}_{version}.json" for folder in (SCHEMAS, VENDORED_SCHEMAS)]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        return None
    # Python's re rejects the Go-style "^(?i)" in prometheusrule_v1.json (shared/schemas/README).
    text = path.read_text().replace('"^(?i)', '"(?i)^')
    return Draft202012Validator(json.loads(text))


def validation_errors(document: dict) -> list[str]:
    """Why a rendered object is invalid ([] if valid). Core kinds: kubernetes-validate
    (strict: unknown fields are errors); custom kinds: ../shared/schemas. An object neither
    knows is itself an error, so nothing goes unchecked."""
    import kubernetes_validate

    document = {k: v for k, v in document.items() if k != "__template__"}
    api_version, kind = document["apiVersion"], document["kind"]
    validator = _custom_validator(api_version, kind)
    if validator is not None:
        return [
            f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in validator.iter_errors(document)
        ]
    try:
        kubernetes_validate.validate(document, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path)) or '<root>'}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {api_version} {kind}: neither a core kind nor one in {SCHEMAS} or {VENDORED_SCHEMAS}"]
    return []


# ---- the static release binaries ----------------------------------------------------------

RELEASE_DIR = ROOT / "target" / "x86_64-unknown-linux-gnu" / "release"
_release_built = False


def release_binary(name: str) -> Path:
    """A static (crt-static) release binary, built by `make release` once per test session
    (a no-op for cargo when nothing changed)."""
    global _release_built
    if not _release_built:
        run(["make", "--no-print-directory", "release"], timeout=1800, cwd=ROOT)
        _release_built = True
    path = RELEASE_DIR / name
    assert path.is_file(), f"make release did not produce {path}"
    return path


def main(argv: list[str]) -> int:
    """`python tests/shipping.py render [values.yaml ...]`: print the rendered manifests."""
    if not argv or argv[0] != "render":
        print("usage: shipping.py render [values.yaml ...]")
        return 2
    values: dict = {}
    for path in argv[1:]:
        values = _merge(values, yaml.safe_load(Path(path).read_text()) or {})
    for template, text in sorted(render_files(values).items()):
        if text.strip() and not template.endswith("NOTES.txt"):
            print(f"# Source: {template}\n{text.strip()}\n---")
    return 0


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
