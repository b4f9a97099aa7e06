# syntax=docker/dockerfile:1
#
# postern container image: a static binary on distroless static, non-root (UID 65532),
# no shell, no package manager.
#
#   docker build --build-arg VERSION=0.1.0 -t postern:0.1.0 .
#
# Base images are pinned by tag, and the runtime one also by digest (the multi-arch
# index of gcr.io/distroless/static-debian12:nonroot, August 2026). Let Renovate or
# Dependabot move the digest, or override the whole reference with
# --build-arg RUNTIME_IMAGE=... (CI does, with stand-in images built offline).
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:f5b485ea962d9bd1186b2f6b3a061191539b905b82ec395de78cbfae51f20e35

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first, so this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/postern .

FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="postern" \
      org.opencontainers.image.description="Webhook signature and schema verification sidecar" \
      org.opencontainers.image.source="https://github.com/postern-dev/postern" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/postern /postern
USER 65532:65532
# 8090: webhooks (POSTERN_LISTEN_ADDR); 8091: /healthz, /readyz, /metrics (POSTERN_ADMIN_ADDR).
EXPOSE 8090 8091
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/postern", "healthcheck"]
ENTRYPOINT ["/postern"]
