# obs-fleet role images: one file for every role, `--build-arg SERVICE=<binary>` picks it.
#
# Every image is the same tiny runtime: FROM scratch, one static (crt-static) binary, a
# numeric non-root user, the binary as ENTRYPOINT and its `healthcheck` subcommand as the
# HEALTHCHECK. Two ways lead to it:
#
#   prebuilt  (what CI and `make images` use)  — the binaries are built once per
#             architecture outside Docker (`make release`, cross-compiled for arm64) and
#             staged, stripped, by `make image-context` as bin/<arch>/<binary>; the context is
#             that staging folder. No base image is pulled and nothing runs at build time,
#             so buildx assembles the arm64 image on an amd64 host without emulation.
#                 make images            # all five roles, tagged $(IMAGE_PREFIX)/<role>:$(IMAGE_TAG)
#
#   runtime   (the default target)  — everything from source in Docker: a Rust stage with
#             the dependencies in their own cached layer (cargo-chef), cross-compiling on
#             the build platform for the target platform.
#                 docker buildx build --build-arg SERVICE=watcher --platform linux/amd64,linux/arm64 .
#
# The prebuilt stages come first on purpose: the legacy builder (Docker without BuildKit)
# builds every stage up to --target, so with them first that path never pulls an image.

ARG SERVICE=watcher

# ---------------------------------------------------------------------------------------
# base: the runtime image minus its binary, shared by both paths.
FROM scratch AS base
ARG SERVICE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="obs-fleet ${SERVICE}" \
      org.opencontainers.image.description="obs-fleet ${SERVICE} role" \
      org.opencontainers.image.source="https://github.com/obs-fleet/obs-fleet" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# passwd/group name the numeric users (root, nobody, nonroot 65532) for tools that look.
COPY docker/rootfs/ /
# The state directory is the only path the role writes; it belongs to the runtime user.
COPY --chown=65532:65532 docker/state/ /var/lib/obs-fleet/
ENV STATE_DIR=/var/lib/obs-fleet
# A container is reached through its network namespace: listen on every address there
# (outside a container the roles default to 127.0.0.1).
ENV HOST=0.0.0.0
WORKDIR /var/lib/obs-fleet
USER 65532:65532
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/role", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/role"]

# ---------------------------------------------------------------------------------------
# prebuilt: the runtime image from a binary staged in the context (bin/<arch>/<binary>).
# TARGETARCH is set by BuildKit; the legacy builder leaves it empty, meaning amd64.
FROM base AS prebuilt
ARG SERVICE
ARG TARGETARCH
COPY bin/${TARGETARCH:-amd64}/${SERVICE} /usr/local/bin/role

# ---------------------------------------------------------------------------------------
# From source. chef: the toolchain plus cargo-chef, on the build platform (never emulated).
FROM --platform=$BUILDPLATFORM rust:1.95-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

# planner: the dependency recipe, which changes only when a manifest or the lockfile does.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# builder: dependencies first (a layer reused until the recipe changes), then the sources.
FROM chef AS builder
ARG TARGETARCH
# arm64 on an amd64 host: cross-compile with Debian's cross toolchain instead of emulating.
RUN if [ "${TARGETARCH}" = "arm64" ] && [ "$(dpkg --print-architecture)" != "arm64" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends \
            gcc-aarch64-linux-gnu=4:12.2.0-3 libc6-dev-arm64-cross=2.36-8cross1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN case "${TARGETARCH:-amd64}" in \
        amd64) echo x86_64-unknown-linux-gnu ;; \
        arm64) echo aarch64-unknown-linux-gnu ;; \
        *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac > /rust-target \
    && rustup target add "$(cat /rust-target)"
# Static binaries, symbols stripped (the image is the binary: every megabyte counts), relative
# relocations packed (the Makefile's RELEASE_RUSTFLAGS).
ENV RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs" \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --target "$(cat /rust-target)" --recipe-path recipe.json
COPY . .
ARG SERVICE
ARG REVISION=unknown
RUN OBS_REVISION="${REVISION}" cargo build --release --target "$(cat /rust-target)" --bin "${SERVICE}" \
    && cp "target/$(cat /rust-target)/release/${SERVICE}" /role

# ---------------------------------------------------------------------------------------
# runtime (default): the base image with the binary built above.
FROM base AS runtime
COPY --from=builder /role /usr/local/bin/role
