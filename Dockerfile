# syntax=docker/dockerfile:1
# docket's one image: the service, worker and bench binaries and the
# healthcheck probe, static, on distroless as a non-root user.
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t docket .
#   docker run docket service | worker | bench ... | healthcheck URL

ARG GO_VERSION=1.26

# Build on the builder's own platform and cross-compile for the target one.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION=dev
ENV GOOS=$TARGETOS GOARCH=$TARGETARCH
# The Makefile's GOBUILD, word for word (internal/deploycheck holds them equal).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ ./service ./worker ./bench ./cmd/healthcheck

# Static binaries need no libc: distroless static has CA certificates, tzdata
# and the nonroot user (65532), and no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="docket" \
      org.opencontainers.image.description="queue-based backend: service, worker and bench" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/ /usr/local/bin/
USER nonroot:nonroot
# bench writes its results under the working directory.
WORKDIR /home/nonroot
# API, worker metrics, bench metrics.
EXPOSE 3001 9101 9102
CMD ["service"]
