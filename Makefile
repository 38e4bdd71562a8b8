# obs-fleet: build, run, test, lint, bench, images, chart.
# `make test` is the whole suite (CI runs it through .ci/run); `make run` starts obs-stack.

CARGO ?= cargo
PYTHON := .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: all build release run test test-deps test-rust test-python lint fmt bench fuzz image chart-test clean
.PHONY: image-context images chart-render lint-shipping

all: build

build:
	$(CARGO) build --workspace

# Static (crt-static) release binaries: what the FROM-scratch images and the benchmarks run.
TARGET := x86_64-unknown-linux-gnu
RELEASE_DIR := target/$(TARGET)/release
# The services only (and the bench's bare-actix baseline): built together with obsctl, cargo
# would unify the client's dependency features (its terminal UI's) into the services' and
# every role binary would carry them. `cargo build --release -p obsctl` builds the client.
RELEASE_PACKAGES := watcher curator planner synthesizer archivist obs-stack bare-actix
# Relative relocations packed (DT_RELR, glibc 2.36+): a static PIE keeps ASLR, and its table of
# pointers to fix up at start shrinks from ~0.8 MB to a few KB in every binary. The Dockerfile
# and bench/run.py build with the same flags.
RELEASE_RUSTFLAGS := -C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs
release:
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" $(CARGO) build --release $(addprefix -p ,$(RELEASE_PACKAGES)) --target $(TARGET)

## Run the embedded default: all five roles in one process.
# The README's `cargo build --release` exactly: one set of packages, so one resolution of
# their features, and either command finds the other's build done (with `-p obs-stack` alone
# cargo would resolve features without obsctl's and rebuild a dozen crates).
run:
	$(CARGO) build --release
	./target/release/obs-stack

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

## Fuzz every parser a client reaches (fuzz/, cargo-fuzz with RUSTC_BOOTSTRAP=1), each target
## for FUZZ_SECONDS (default 60); FUZZ_TARGETS="issues silences" picks some. Not in `make test`.
fuzz:
	./scripts/fuzz.sh

## Images: FROM scratch + one static release binary, no base image pulled (docs/deploy.md).
## `make images` builds all five roles; `make image SERVICE=watcher` one of them.
ROLES := watcher curator planner synthesizer archivist
SERVICE ?= watcher
IMAGE_PREFIX ?= ghcr.io/obs-fleet/obs-fleet
IMAGE_TAG ?= dev
IMAGE_CONTEXT := target/image-context
IMAGE_ARCH := $(if $(findstring aarch64,$(TARGET)),arm64,amd64)
STRIP ?= strip
VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
REVISION = $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

# The Dockerfile's `prebuilt` build context: bin/<arch>/<binary> (symbols stripped) + docker/.
image-context: release
	rm -rf $(IMAGE_CONTEXT)/bin/$(IMAGE_ARCH) $(IMAGE_CONTEXT)/docker
	mkdir -p $(IMAGE_CONTEXT)/bin/$(IMAGE_ARCH)
	cp -R docker $(IMAGE_CONTEXT)/docker
	for binary in $(ROLES) obs-stack; do \
		$(STRIP) --strip-all -o $(IMAGE_CONTEXT)/bin/$(IMAGE_ARCH)/$$binary $(RELEASE_DIR)/$$binary || exit 1; \
	done

image: image-context
	docker build --target prebuilt --build-arg SERVICE=$(SERVICE) \
		--build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		-t $(IMAGE_PREFIX)/$(SERVICE):$(IMAGE_TAG) -f Dockerfile $(IMAGE_CONTEXT)

images: image-context
	for role in $(ROLES); do \
		docker build -q --target prebuilt --build-arg SERVICE=$$role \
			--build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
			-t $(IMAGE_PREFIX)/$$role:$(IMAGE_TAG) -f Dockerfile $(IMAGE_CONTEXT) || exit 1; \
	done

## Chart checks (Helm SDK lint and render, every object validated, promtool; no Rust build):
## `make chart-render VALUES=my-values.yaml` prints the manifests (Helm's SDK, no helm binary).
## The images and the real-Prometheus test run in test-python with everything else.
## Each installs only what it uses (test-deps is everything).
chart-test:
	./scripts/install-test-deps.sh python prometheus
	$(PYTHON) -m pytest -q tests/test_chart.py

chart-render:
	./scripts/install-test-deps.sh python
	$(PYTHON) tests/shipping.py render $(VALUES)

lint-shipping:
	./scripts/install-test-deps.sh python shellcheck
	hadolint --failure-threshold warning Dockerfile
	actionlint

clean:
	$(CARGO) clean
	rm -rf .venv data
