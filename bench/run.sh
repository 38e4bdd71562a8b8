#!/usr/bin/env bash
# `make bench`: build the release binaries, install the Python baseline, run bench/run.py.
# Arguments go to bench/run.py (--quick, --scenarios, -o FILE; see its --help).
# BENCH_SKIP_BUILD=1 uses the release binaries as they are.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    make --no-print-directory release
fi

# The Python original, in a venv of its own; reinstalled only when its requirements change.
venv=bench/.venv-python-baseline
requirements=bench/python-baseline/requirements.txt
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi

command -v wrk >/dev/null || { echo "bench: wrk not found (make test-deps installs it)" >&2; exit 2; }
exec python3 bench/run.py "$@"
