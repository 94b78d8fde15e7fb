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
TOOLS          := $(CURDIR)/bin/tools
BENCH          ?= .
BENCHTIME      ?= 1s
VERSION_PKG    := github.com/prometheus/common/version
LDFLAGS        := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) -X $(VERSION_PKG).Branch=$(BRANCH)

# The test cluster of make integration and make e2e-cluster
# (test/cluster/README.md): state in CLUSTER_DIR, builds in CLUSTER_CACHE.
CLUSTER            := test/cluster/cluster.sh
CLUSTER_DIR        ?= /tmp/nodeagent-cluster
CLUSTER_CACHE      ?= /var/cache/nodeagent-cluster
CLUSTER_MODE       ?= cluster
INTEGRATION_MODE   ?= apiserver
export CLUSTER_DIR CLUSTER_CACHE

.PHONY: all build run test vet unit e2e node-conformance integration cluster-up cluster-down e2e-cluster lint fmt-check bench clean

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
# staticcheck.
test: fmt-check vet unit e2e node-conformance lint

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -short -count=1 ./...

e2e:
	$(GO) test -count=1 -run 'TestEndToEnd' ./cmd/nodeagent/

$(TOOLS)/node_exporter:
	GOBIN=$(TOOLS) $(GO) install $(NODE_EXPORTER)

node-conformance: $(TOOLS)/node_exporter
	NODE_EXPORTER_BIN=$(TOOLS)/node_exporter $(GO) test -count=1 -run 'TestNodeExporterConformance' ./collectors/

# Integration tests against a real kubelet v1.37 with containerd and three
# static pods on 127.0.0.1 (docs/kubelet.md, test/cluster/README.md). Starts
# the test cluster when it is not running, in apiserver mode so that
# ServiceAccount tokens are checked for real (INTEGRATION_MODE=kubelet: x509
# only), and stops it again afterwards if it started it; a cluster that was
# already up is reused as it is. The first start builds for 10-20 minutes.
# Not part of make test: the tests skip without NODEAGENT_INTEGRATION.
integration:
	@if $(CLUSTER) running; then started=0; $(CLUSTER) up || exit 1; \
	else started=1; $(CLUSTER) up $(INTEGRATION_MODE) || exit 1; fi; \
	NODEAGENT_INTEGRATION=$(CLUSTER_DIR)/env $(GO) test -count=1 -v -run 'Integration' ./kubeletclient/ ./cmd/nodeagent/; rc=$$?; \
	if [ $$started = 1 ]; then $(CLUSTER) down; fi; \
	exit $$rc

# A test cluster left running: make cluster-up CLUSTER_MODE=kubelet|apiserver|cluster.
cluster-up:
	$(CLUSTER) up $(CLUSTER_MODE)

cluster-down:
	$(CLUSTER) down

# End-to-end tests on a real single-node cluster (test/e2e): builds the
# pinned kube-state-metrics, Prometheus and Prometheus Operator once, brings
# the cluster up in cluster mode unless it already runs so, runs the tests
# with NODEAGENT_E2E set, and stops the cluster again if it started it.
e2e-cluster:
	@$(CLUSTER) build-e2e || exit 1; \
	if $(CLUSTER) running && [ "$$(cat $(CLUSTER_DIR)/run/mode)" = cluster ]; then started=0; else started=1; fi; \
	$(CLUSTER) up cluster || exit 1; \
	NODEAGENT_E2E=$(CLUSTER_DIR)/env $(GO) test -count=1 -v -timeout 30m ./test/e2e/; rc=$$?; \
	if [ $$started = 1 ]; then $(CLUSTER) down; fi; \
	exit $$rc

lint:
	$(GO) run $(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...

clean:
	rm -rf bin
