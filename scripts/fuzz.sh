#!/usr/bin/env bash
# `make fuzz`: build the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer) and run each for
# FUZZ_SECONDS (default 60). Not part of `make test` or CI: it takes minutes and a core.
#
# libFuzzer needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# them. Inputs: fuzz/seeds/<target> (committed starting points), fuzz/regressions/<target>
# (every input a run once failed on, kept so it is retried), fuzz/corpus/<target> (what runs
# found, kept between runs, not committed). A failing input lands in fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
# The longest input tried: enough for bodies past the text limits (MAX_TEXT_CHARS is 4096).
FUZZ_MAX_LEN="${FUZZ_MAX_LEN:-16384}"
export RUSTC_BOOTSTRAP=1 CARGO_INCREMENTAL=0

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

all_targets=$(cargo fuzz list)
targets="${FUZZ_TARGETS:-$all_targets}"
# No sanitizer: the code under test is safe Rust, and without ASan the targets run several
# times faster; debug assertions on, so arithmetic overflow is a finding too.
flags=(--sanitizer none --debug-assertions)
cargo fuzz build "${flags[@]}"

host=$(rustc -vV | sed -n 's/^host: //p')
failed=()
for target in $targets; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    dirs=("fuzz/corpus/$target")
    for extra in "fuzz/seeds/$target" "fuzz/regressions/$target"; do
        [ -d "$extra" ] && dirs+=("$extra")
    done
    echo "== $target: ${FUZZ_SECONDS} s"
    # The binary cargo-fuzz built, run as it is: `cargo fuzz run` would check the build
    # again for every target (obs-core's build script reruns when the git HEAD moves).
    if ! "fuzz/target/$host/release/$target" "${dirs[@]}" \
        -artifact_prefix="fuzz/artifacts/$target/" -max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" -timeout=10 \
        -rss_limit_mb=2048 -dict=fuzz/json.dict -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no findings in $(echo $targets | wc -w) targets, ${FUZZ_SECONDS} s each"
