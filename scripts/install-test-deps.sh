#!/usr/bin/env bash
# Installs what the tests need, idempotently: Debian packages and a Python venv.
# Safe to run again; it only installs what is missing.
#
#   install-test-deps.sh                      everything (make test, make bench)
#   install-test-deps.sh python [PACKAGE...]  the Python venv, and of the Debian packages
#                                             only those named (make chart-render: none)
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_APT_PACKAGES=(prometheus prometheus-alertmanager busybox-static wrk shellcheck postgresql haproxy tmux chromium fonts-dejavu-core)
PY_VENV=.venv
PY_REQUIREMENTS=tests/requirements.txt

case "${1:-all}" in
    all)
        APT_PACKAGES=("${ALL_APT_PACKAGES[@]}")
        ;;
    python)
        APT_PACKAGES=("${@:2}")
        for package in "${APT_PACKAGES[@]}"; do
            # Only what the suite is known to need, so a typo cannot install something else.
            if [[ " ${ALL_APT_PACKAGES[*]} " != *" $package "* ]]; then
                echo "install-test-deps: '$package' is not one of: ${ALL_APT_PACKAGES[*]}" >&2
                exit 2
            fi
        done
        ;;
    *)
        echo "usage: $0 [all | python [DEBIAN_PACKAGE...]]" >&2
        exit 2
        ;;
esac

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$PY_VENV/bin/python" ]; then
    python3 -m venv "$PY_VENV"
fi
stamp="$PY_VENV/.requirements.sha"
want=$(sha256sum "$PY_REQUIREMENTS" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$PY_VENV/bin/pip" install -q --disable-pip-version-check -r "$PY_REQUIREMENTS"
    echo "$want" > "$stamp"
fi
