# obs-fleet: build, run, test, lint, bench, images, chart.
# `make test` is the whole suite (CI runs it through .ci/run); `make run` starts obs-stack.

CARGO ?= cargo
PYTHON := .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: all build release run test test-deps test-rust test-python lint fmt bench image chart-test clean

all: build

build:
	$(CARGO) build --workspace

# Static (crt-static) release binaries: what the FROM-scratch images and the benchmarks run.
TARGET := x86_64-unknown-linux-gnu
RELEASE_DIR := target/$(TARGET)/release
release:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --workspace --target $(TARGET)

## Run the embedded default: all five roles in one process.
run:
	$(CARGO) run --release -p obs-stack --bin obs-stack

test-deps:
	./scripts/install-test-deps.sh

## The whole test suite: lint, Rust tests (real servers, Prometheus, promtool), Python tests.
test: test-deps lint test-rust test-python

# The process tests run the real binaries; `cargo test` alone does not build them all.
test-rust:
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --all-targets

test-python:
	$(PYTHON) -m pytest -q tests

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Benchmarks: ratios against baselines measured in the same run -> docs/BENCHMARKS.md
bench: test-deps
	./bench/run.sh

clean:
	$(CARGO) clean
	rm -rf .venv data
