# syntax=docker/dockerfile:1
# A static binary on a distroless, non-root base: no shell, no package
# manager, nothing to exec (nodeagent never forks).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 make build BIN=/out/nodeagent

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nodeagent /bin/nodeagent
USER 65534:65534
EXPOSE 9812 9813
ENTRYPOINT ["/bin/nodeagent"]
