# syntax=docker/dockerfile:1
# nodeagent's image, for those who build with Docker:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) -t nodeagent .
# make image builds the same image without a container engine (see
# docs/image.md): FROM scratch, the static binary at /bin/nodeagent, the
# Debian CA bundle, /etc/passwd and /etc/group from hack/image/rootfs
# naming nobody/nogroup (65534), the user it runs as, and ports 9812, 9813.
#
# The build stage is pinned by digest; the tag beside it says what the
# digest tracks. To refresh it:
#   go run github.com/google/go-containerregistry/cmd/crane@v0.22.1 digest golang:1.26
FROM --platform=$BUILDPLATFORM golang:1.26@sha256:3c3e25a4da13fd0478eed2df1eb35a0e667094a7124d3993a6a1d30f71c17e79 AS build
ARG TARGETOS TARGETARCH
# The build context has no .git (.dockerignore): the commit comes in here.
ARG REVISION=unknown SOURCE_DATE_EPOCH=0
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOFLAGS=-trimpath make build BIN=/out/nodeagent && \
    install -D -m 0755 /out/nodeagent /rootfs/bin/nodeagent && \
    install -D -m 0644 -t /rootfs/etc hack/image/rootfs/etc/passwd hack/image/rootfs/etc/group && \
    install -D -m 0644 -t /rootfs/etc/ssl/certs /etc/ssl/certs/ca-certificates.crt

FROM scratch
COPY --from=build /rootfs/ /
USER 65534:65534
EXPOSE 9812 9813
ENTRYPOINT ["/bin/nodeagent"]
ARG REVISION=unknown
LABEL org.opencontainers.image.title=nodeagent \
      org.opencontainers.image.source=https://github.com/nodeagent/nodeagent \
      org.opencontainers.image.revision=$REVISION
