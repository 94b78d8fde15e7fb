# nodeagent build, test and benchmarks. Every target works on a fresh clone
# with Go 1.26 and the Go module proxy.

GO             ?= go
BIN            ?= bin/nodeagent
ARGS           ?=
VERSION        ?= $(shell cat VERSION)
REVISION       ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH         ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
STATICCHECK    := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# node_exporter is built only as a measuring stick for conformance and
# benchmarks, never linked into nodeagent.
NODE_EXPORTER  := github.com/prometheus/node_exporter@v1.12.1
# promtool checks and unit-tests the alerting rules and the Prometheus
# example configuration (deploy/), and runs kube-prometheus' rules over
# nodeagent's relabelled series. Built without the service discoveries
# but Kubernetes' (the example configuration's), which drops the cloud
# SDKs from the build.
PROMTOOL       := github.com/prometheus/prometheus/cmd/promtool@v0.316.0
PROMTOOL_TAGS  := remove_all_sd,enable_kubernetes_sd
TOOLS          := $(CURDIR)/bin/tools
BENCH          ?= .
BENCHTIME      ?= 1s
VERSION_PKG    := github.com/prometheus/common/version
LDFLAGS        := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) -X $(VERSION_PKG).Branch=$(BRANCH)

# The real kubelet of make integration (../shared beside the checkout).
REAL_KUBELET         ?= $(CURDIR)/../shared/tools/real-kubelet
REAL_KUBELET_DIR     ?= /tmp/real-kubelet
REAL_KUBELET_APISERVER ?= 1

.PHONY: all build run test vet unit e2e node-conformance integration lint fmt-check bench clean tools manifests deploy-check helm-lint

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/nodeagent

# make run ARGS='--web.listen-address=127.0.0.1:9812 --log.level=debug'
run: build
	./$(BIN) $(ARGS)

# The test command of the README and of CI: formatting, vet, every unit
# test under the race detector, the exposition lint (the built binary over
# fixture trees, each endpoint through its own check-metrics), and the
# node_exporter conformance of every host collector's golden cases, and
# staticcheck. The unit tests include deploy/'s: the kustomize base and the
# Helm chart rendered, decoded strictly and checked, helm lint --strict,
# and promtool over the rules and the Prometheus example.
test: fmt-check vet unit e2e node-conformance lint

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit: $(TOOLS)/promtool
	PROMTOOL=$(TOOLS)/promtool $(GO) test -race -short -count=1 ./...

e2e:
	$(GO) test -count=1 -run 'TestEndToEnd' ./cmd/nodeagent/

$(TOOLS)/node_exporter:
	GOBIN=$(TOOLS) $(GO) install $(NODE_EXPORTER)

$(TOOLS)/promtool:
	GOBIN=$(TOOLS) $(GO) install -tags $(PROMTOOL_TAGS) $(PROMTOOL)

tools: $(TOOLS)/node_exporter $(TOOLS)/promtool

# The deployment's tests alone: rendering, security properties, helm lint,
# promtool (see docs/deploy.md).
deploy-check: $(TOOLS)/promtool
	PROMTOOL=$(TOOLS)/promtool $(GO) test -count=1 ./deploy/ ./internal/manifests/
	$(GO) test -count=1 -run 'Deploy|ServiceMonitor|SystemdUnit' ./cmd/nodeagent/

helm-lint:
	$(GO) test -count=1 -run 'TestHelmLint|TestChart' ./deploy/

# Regenerates deploy/kubernetes from the Helm chart's default rendering.
manifests:
	$(GO) test -count=1 -run TestKustomizeBaseIsChart ./deploy/ -update

node-conformance: $(TOOLS)/node_exporter
	NODE_EXPORTER_BIN=$(TOOLS)/node_exporter $(GO) test -count=1 -run 'TestNodeExporterConformance' ./collectors/

# Integration tests against a real kubelet v1.37 with containerd and three
# static pods on 127.0.0.1 (docs/kubelet.md). Starts it when it is not
# running, with a kube-apiserver so service-account tokens are checked for
# real (REAL_KUBELET_APISERVER=0: x509 only), and stops it again afterwards
# if it started it. The first start builds for 10-15 minutes. Not part of
# make test: the tests skip without NODEAGENT_INTEGRATION.
integration:
	@pid=$(REAL_KUBELET_DIR)/run/kubelet.pid; \
	if [ -s $$pid ] && [ "$$(cat /proc/$$(cat $$pid)/comm 2>/dev/null)" = kubelet ]; then started=0; else started=1; fi; \
	REAL_KUBELET_DIR=$(REAL_KUBELET_DIR) REAL_KUBELET_APISERVER=$(REAL_KUBELET_APISERVER) $(REAL_KUBELET)/up.sh || exit 1; \
	NODEAGENT_INTEGRATION=$(REAL_KUBELET_DIR)/env $(GO) test -count=1 -v -run 'Integration' ./kubeletclient/ ./cmd/nodeagent/; rc=$$?; \
	if [ $$started = 1 ]; then REAL_KUBELET_DIR=$(REAL_KUBELET_DIR) $(REAL_KUBELET)/down.sh; fi; \
	exit $$rc

lint:
	$(GO) run $(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...

clean:
	rm -rf bin
