# nodeagent build, test and benchmarks. Every target works on a fresh clone
# with Go 1.26 and the Go module proxy.

GO             ?= go
BIN            ?= bin/nodeagent
ARGS           ?=
VERSION        ?= $(shell cat VERSION)
# The full commit, with -modified when the tree is dirty (as a plain go
# build stamps it), and its time: the image's creation time and every
# time in it, so that two builds of one commit are identical.
REVISION       ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(if $(shell git status --porcelain 2>/dev/null),-modified)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
BRANCH         ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
STATICCHECK    := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# node_exporter is built only as a measuring stick for conformance and
# benchmarks, never linked into nodeagent.
NODE_EXPORTER  := github.com/prometheus/node_exporter@v1.12.1
# promtool checks and unit-tests the alerting rules and the Prometheus
# example configuration (deploy/), runs kube-prometheus' rules over
# nodeagent's relabelled series and node-mixin's systemd alerts over the
# systemd collector's output. Built without the service discoveries but
# Kubernetes' (the example configuration's), which drops the cloud SDKs
# from the build.
PROMTOOL       := github.com/prometheus/prometheus/cmd/promtool@v0.316.0
PROMTOOL_TAGS  := remove_all_sd,enable_kubernetes_sd
# nfpm builds the .deb and .rpm (make package).
NFPM           := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
TOOLS          := $(CURDIR)/bin/tools
# The tools' binaries carry their versions in their names, so that a
# changed version builds anew instead of reusing an older binary (the
# conformance tests check node_exporter's module version too).
NODE_EXPORTER_BIN := $(TOOLS)/node_exporter-$(lastword $(subst @v, ,$(NODE_EXPORTER)))
PROMTOOL_BIN      := $(TOOLS)/promtool-$(lastword $(subst @v, ,$(PROMTOOL)))
BENCH          ?= .
BENCHTIME      ?= 1s
VERSION_PKG    := github.com/prometheus/common/version
# The image's binary carries no branch: a branch is not a property of the
# commit, and two builds of one commit must be identical.
IMAGE_LDFLAGS  := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
                  -X $(VERSION_PKG).BuildDate=$(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS        := $(IMAGE_LDFLAGS) -X $(VERSION_PKG).Branch=$(BRANCH)
# make image: the repository (the tag is the version), the platforms, and
# the licence label (an SPDX expression; NOASSERTION until the project
# states one).
IMAGE_REPO      ?= ghcr.io/nodeagent/nodeagent
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
IMAGE_LICENSES  ?= NOASSERTION
IMAGE_OUT       ?= bin/image

# Packages: static binaries for these architectures, in dist/. A VERSION
# with a pre-release part (0.1.0-dev) or a build from a modified tree gets
# the revision as build metadata: 0.1.0-dev+gite7a7ae4(.dirty), which sorts
# before 0.1.0 in dpkg and rpm (0.1.0~dev+gite7a7ae4-1).
PKG_ARCHS      ?= amd64 arm64
PKG_DIRTY      := $(shell git status --porcelain 2>/dev/null | grep -q . && echo .dirty)
PKG_REVISION   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKG_VERSION    ?= $(VERSION)$(if $(or $(findstring -,$(VERSION)),$(PKG_DIRTY)),+git$(PKG_REVISION)$(PKG_DIRTY))
DIST           ?= dist
# Stripped of the symbol table and DWARF (as distributions ship binaries):
# a third smaller; panics still print their stacks.
PKG_LDFLAGS    := -s -w -X $(VERSION_PKG).Version=$(PKG_VERSION) -X $(VERSION_PKG).Revision=$(REVISION) -X $(VERSION_PKG).Branch=$(BRANCH)

# The test cluster of make integration and make e2e-cluster
# (test/cluster/README.md): state in CLUSTER_DIR, builds in CLUSTER_CACHE.
CLUSTER            := test/cluster/cluster.sh
CLUSTER_DIR        ?= /tmp/nodeagent-cluster
CLUSTER_CACHE      ?= /var/cache/nodeagent-cluster
CLUSTER_MODE       ?= cluster
INTEGRATION_MODE   ?= apiserver
export CLUSTER_DIR CLUSTER_CACHE

.PHONY: all build run test vet unit e2e node-conformance node-mixin-rules integration cluster-up cluster-down e2e-cluster lint fmt-check bench soak perf perf-bin perf-kubelet clean image image-smoke package package-test unit-syscalls tools manifests deploy-check helm-lint

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/nodeagent

# The container image, without a container engine (docs/image.md): a
# static binary per platform, then hack/image writes the OCI layout
# bin/image/oci and a docker-archive tarball per platform.
image:
	@set -e; for p in $(IMAGE_PLATFORMS); do \
		echo "building bin/$${p%%/*}-$${p##*/}/nodeagent"; \
		CGO_ENABLED=0 GOOS=$${p%%/*} GOARCH=$${p##*/} $(GO) build -trimpath -ldflags '$(IMAGE_LDFLAGS)' -o bin/$${p%%/*}-$${p##*/}/nodeagent ./cmd/nodeagent; \
	done
	$(GO) run ./hack/image --out $(IMAGE_OUT) --repository $(IMAGE_REPO) --version $(VERSION) \
		--revision $(REVISION) --licenses $(IMAGE_LICENSES) --source-date-epoch $(SOURCE_DATE_EPOCH) \
		$(foreach p,$(IMAGE_PLATFORMS),--binary $(p)=bin/$(subst /,-,$(p))/nodeagent)

# The image run as a node runs it (containerd, runc, host /proc, /sys, /
# and network), against a private containerd in a temporary directory
# (docs/image.md). Needs root and Debian's containerd and runc; not part of
# make test.
image-smoke: image
	NODEAGENT_IMAGE_SMOKE=$(CURDIR)/$(IMAGE_OUT) $(GO) test -count=1 -v -run 'TestImageSmoke' ./hack/image/

# make run ARGS='--web.listen-address=127.0.0.1:9812 --log.level=debug'
run: build
	./$(BIN) $(ARGS)

# The test command of the README and of CI: formatting, vet, every unit
# test under the race detector, the exposition lint (the built binary over
# fixture trees, each endpoint through its own check-metrics), and the
# node_exporter conformance of every host collector's golden cases, and
# staticcheck; then the systemd unit against the system calls the agent
# makes, and the packages installed, upgraded and purged. The unit tests
# include deploy/'s (the kustomize base and the Helm chart rendered,
# decoded strictly and checked, helm lint --strict, promtool over the rules
# and the Prometheus example) and node-mixin's systemd alerts.
test: fmt-check vet unit e2e node-conformance lint unit-syscalls package-test

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit: $(PROMTOOL_BIN)
	PROMTOOL_BIN=$(PROMTOOL_BIN) $(GO) test -race -short -count=1 ./...

e2e:
	$(GO) test -count=1 -run 'TestEndToEnd' ./cmd/nodeagent/


# Built as its Linux releases are (promu, cgo off): static.
$(NODE_EXPORTER_BIN):
	rm -rf $(TOOLS)/.node_exporter && CGO_ENABLED=0 GOBIN=$(TOOLS)/.node_exporter $(GO) install $(NODE_EXPORTER)
	mv $(TOOLS)/.node_exporter/node_exporter $@ && rm -rf $(TOOLS)/.node_exporter

# Side by side with the peers (hack/perf, docs/performance.md): this
# host's /metrics/node against node_exporter 1.12.1, and /metrics/cadvisor
# over generated trees of 250 to 2,000 containers. PERF_ARGS='--rounds 5'
# and the like; go run ./hack/perf --help lists them.
# Both binaries are measured as they ship: nodeagent as the image and the
# packages build it (static, -trimpath), node_exporter as its releases.
# A dynamically linked build maps the C library too: ~1.2 MiB more RSS.
PERF_ARGS      ?=
PERF_BIN       := bin/perf/nodeagent
perf: perf-bin $(NODE_EXPORTER_BIN)
	$(GO) run ./hack/perf --nodeagent $(PERF_BIN) --node-exporter $(NODE_EXPORTER_BIN) $(PERF_ARGS)

perf-bin:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(IMAGE_LDFLAGS)' -o $(PERF_BIN) ./cmd/nodeagent

# nodeagent's /metrics/cadvisor against the kubelet's own on the test
# cluster's node (hack/perf --kubelet-env, docs/performance.md): brings the
# cluster up in cluster mode unless it runs so, runs PODS small pods of the
# harness's image (a Deployment in namespace nodeagent-perf; the node takes
# 110 pods, 3 of them the static pods), waits until they run, measures,
# deletes the pods again and stops the cluster if it started it. nodeagent
# runs as the DaemonSet runs it: under half a CPU, serving TLS with every
# scrape's token reviewed. PERF_KUBELET_ARGS='--kubelet-rounds 10' and the
# like; PODS_BUSY=2ms makes each pod burn that much CPU a second, so that
# its counters move as a working container's do. Not part of make test.
PODS              ?= 100
PODS_BUSY         ?= 0
PERF_KUBELET_ARGS ?=
perf-kubelet: perf-bin
	@if $(CLUSTER) running && [ "$$(cat $(CLUSTER_DIR)/run/mode)" = cluster ]; then started=0; else started=1; fi; \
	$(CLUSTER) up cluster || exit 1; \
	pods() { . $(CLUSTER_DIR)/env && $(CLUSTER_CACHE)/bin/clustertool perf-pods -kubeconfig "$$KUBECONFIG" -image "$$POD_IMAGE" -replicas $$1 -busy $(PODS_BUSY); }; \
	pods $(PODS) && $(GO) run ./hack/perf --nodeagent $(PERF_BIN) --containers '' --kubelet-env $(CLUSTER_DIR)/env $(PERF_KUBELET_ARGS); rc=$$?; \
	pods 0 || rc=1; \
	if [ $$started = 1 ]; then $(CLUSTER) down; fi; \
	exit $$rc

# The full soak: 10,000 scrapes of the built binary from 4 concurrent
# clients over every path; resident memory, descriptors and threads must
# hold (make unit runs 2,000 under -short).
soak:
	$(GO) test -count=1 -v -run 'TestSoak' ./cmd/nodeagent/

# node_exporter conformance of the host collectors (golden cases and this
# host), and of make perf's host comparison: both sides as hack/perf starts
# them serve the same node_* series.
node-conformance: $(NODE_EXPORTER_BIN)
	NODE_EXPORTER_BIN=$(NODE_EXPORTER_BIN) $(GO) test -count=1 -run 'TestNodeExporterConformance' ./collectors/... ./hack/perf


$(PROMTOOL_BIN):
	rm -rf $(TOOLS)/.promtool && GOBIN=$(TOOLS)/.promtool $(GO) install -tags $(PROMTOOL_TAGS) $(PROMTOOL)
	mv $(TOOLS)/.promtool/promtool $@ && rm -rf $(TOOLS)/.promtool

tools: $(NODE_EXPORTER_BIN) $(PROMTOOL_BIN)

# node-mixin's systemd alerts (kube-prometheus' rules, unchanged) under
# promtool test rules, on series the systemd collector served from a fake
# manager on a private dbus-daemon (Debian's dbus; .ci/run installs it).
# make unit runs it too.
node-mixin-rules: $(PROMTOOL_BIN)
	PROMTOOL_BIN=$(PROMTOOL_BIN) $(GO) test -count=1 -v -run 'TestNodeMixinSystemdAlerts' ./collectors/node/

# The deployment's tests alone: rendering, security properties, helm lint,
# promtool (see docs/deploy.md).
deploy-check: $(PROMTOOL_BIN)
	PROMTOOL_BIN=$(PROMTOOL_BIN) $(GO) test -count=1 ./deploy/ ./internal/manifests/
	$(GO) test -count=1 -run 'Deploy|ServiceMonitor|SystemdUnit' ./cmd/nodeagent/

helm-lint:
	$(GO) test -count=1 -run 'TestHelmLint|TestChart' ./deploy/

# Regenerates deploy/kubernetes from the Helm chart's default rendering.
manifests:
	$(GO) test -count=1 -run TestKustomizeBaseIsChart ./deploy/ -update

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
	NODEAGENT_INTEGRATION=$(CLUSTER_DIR)/env $(GO) test -count=1 -v -run 'Integration' ./cgroup/ ./kubeletclient/ ./cmd/nodeagent/ ./hack/perf/; rc=$$?; \
	if [ $$started = 1 ]; then $(CLUSTER) down; fi; \
	exit $$rc

# A test cluster left running: make cluster-up CLUSTER_MODE=kubelet|apiserver|cluster.
cluster-up:
	$(CLUSTER) up $(CLUSTER_MODE)

cluster-down:
	$(CLUSTER) down

# End-to-end tests on a real single-node cluster (test/e2e): builds
# nodeagent's image for this machine's architecture only (under a
# repository of its own, so that the test's rewrite of the manifests'
# image is what makes the pods run it), the pinned kube-state-metrics,
# Prometheus and Prometheus Operator once, brings the cluster up in cluster
# mode unless it already runs so, runs the tests with NODEAGENT_E2E and
# NODEAGENT_E2E_IMAGE (the image's docker-archive tarball, which the test
# imports into the cluster's containerd) set, and stops the cluster again if
# it started it.
E2E_ARCH       := $(shell $(GO) env GOARCH)
E2E_IMAGE_REPO ?= nodeagent.e2e.invalid/nodeagent
E2E_IMAGE_OUT  := bin/e2e-image
E2E_IMAGE      := $(CURDIR)/$(E2E_IMAGE_OUT)/nodeagent-$(VERSION)-linux-$(E2E_ARCH).tar
e2e-cluster:
	@$(MAKE) --no-print-directory image IMAGE_PLATFORMS=linux/$(E2E_ARCH) IMAGE_REPO=$(E2E_IMAGE_REPO) IMAGE_OUT=$(E2E_IMAGE_OUT) || exit 1; \
	$(CLUSTER) build-e2e || exit 1; \
	if $(CLUSTER) running && [ "$$(cat $(CLUSTER_DIR)/run/mode)" = cluster ]; then started=0; else started=1; fi; \
	$(CLUSTER) up cluster || exit 1; \
	NODEAGENT_E2E=$(CLUSTER_DIR)/env NODEAGENT_E2E_IMAGE=$(E2E_IMAGE) $(GO) test -count=1 -v -timeout 40m ./test/e2e/; rc=$$?; \
	if [ $$started = 1 ]; then $(CLUSTER) down; fi; \
	exit $$rc

lint:
	$(GO) run $(STATICCHECK) ./...

$(TOOLS)/nfpm:
	GOBIN=$(TOOLS) $(GO) install $(NFPM)

# make package: dist/nodeagent_<version>_<arch>.deb and
# dist/nodeagent-<version>.<arch>.rpm for each of PKG_ARCHS, from
# deploy/packaging/nfpm.yaml.
package: $(TOOLS)/nfpm
	@mkdir -p $(DIST)
	@set -e; for arch in $(PKG_ARCHS); do \
	  echo "nodeagent $(PKG_VERSION) linux/$$arch"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath \
	    -ldflags '$(PKG_LDFLAGS)' \
	    -o $(DIST)/$$arch/nodeagent ./cmd/nodeagent; \
	  for p in deb rpm; do \
	    NODEAGENT_BIN=$(DIST)/$$arch/nodeagent VERSION=$(PKG_VERSION) ARCH=$$arch \
	      $(TOOLS)/nfpm package --config deploy/packaging/nfpm.yaml --packager $$p --target $(DIST)/; \
	  done; \
	done

# The packages' tests (deploy/packaging): nfpm builds two versions of each
# from one static binary; the .deb is installed, upgraded and purged in a
# scratch root with its maintainer scripts (dpkg --force-script-chrootless),
# the .rpm installed, upgraded and erased with rpm --root. Needs dpkg and
# rpm (.ci/run installs rpm).
package-test: $(TOOLS)/nfpm
	NFPM_BIN=$(TOOLS)/nfpm NODEAGENT_REQUIRE_TOOLS=1 $(GO) test -count=1 -v ./deploy/packaging/

# The systemd units (deploy/systemd): the built binary runs under strace
# with the unit's flags and every path is scraped; each system call it made
# must pass the unit's SystemCallFilter= (and each socket family its
# RestrictAddressFamilies=); systemd-analyze verifies the units and scores
# their sandbox. Needs strace and systemd-analyze (.ci/run installs them).
unit-syscalls:
	NODEAGENT_REQUIRE_TOOLS=1 $(GO) test -count=1 -v ./deploy/systemd/

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...

clean:
	rm -rf bin $(DIST)
