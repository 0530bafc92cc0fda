# meshstack-operator

IMG ?= meshstack-operator:latest
CONTROLLER_GEN ?= go tool controller-gen
# controller-gen's CRD generator with the quantity rule (see hack/crdgen), stamped
# with controller-gen's version like the CRDs controller-gen writes itself.
CRDGEN ?= go run -ldflags "-X sigs.k8s.io/controller-tools/pkg/version.version=$$(go list -m -f '{{.Version}}' sigs.k8s.io/controller-tools)" ./hack/crdgen
# Test flags for `go test`; override for example with TEST_ARGS="-run Foo -v".
TEST_ARGS ?=
# Arguments for the demo, for example DEMO_ARGS=-once to exit after the output.
DEMO_ARGS ?=
# Packages benchmarked by `make bench`.
BENCH_PKGS ?= ./...
# Projects one zone edit reaches in BenchmarkZoneEdit; lower it for quick runs.
BENCH_ZONE_PROJECTS ?= 1000
# How long `make fuzz` runs each fuzz target, and at most minimizes one
# input (go test's default, 60s, can eat a short run whole).
FUZZTIME ?= 1m
FUZZMINIMIZETIME ?= 5s

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate the CRD and RBAC manifests and docs/reference/api.md from the Go markers.
	$(CRDGEN) ./api/... config/crd/bases
	rm -f config/helm/meshstack-operator/crds/*.yaml && cp config/crd/bases/*.yaml config/helm/meshstack-operator/crds/
	go run ./hack/apidocs -crds config/crd/bases -out docs/reference/api.md
	$(CONTROLLER_GEN) rbac:roleName=meshstack-replicator paths="./internal/replicator" output:rbac:artifacts:config=config/rbac/replicator
	$(CONTROLLER_GEN) rbac:roleName=meshstack-landing-zones paths="./internal/replicator/landingzones" output:rbac:artifacts:config=config/rbac/landingzones
	$(CONTROLLER_GEN) rbac:roleName=meshstack-metering paths="./internal/metering;./internal/metering/checkpoint" output:rbac:artifacts:config=config/rbac/metering
	$(CONTROLLER_GEN) rbac:roleName=meshstack-metering-namespaces paths="./internal/metering/attribution" output:rbac:artifacts:config=config/rbac/metering-namespaces
	$(CONTROLLER_GEN) rbac:roleName=meshstack-operator-metrics-auth paths="./internal/metricsauth" output:rbac:artifacts:config=config/rbac/metrics-auth

.PHONY: generate
generate: ## Generate DeepCopy methods from the Go markers.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when generated files differ from what is committed.
	@if [ -n "$$(git status --porcelain -- api config docs/reference)" ]; then \
		echo "Generated files are stale; run 'make manifests generate' and commit:"; \
		git status --porcelain -- api config docs/reference; git --no-pager diff -- api config docs/reference | head -50; exit 1; \
	fi

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet (also on the scale benchmark, which builds only with the tag scale).
	go vet ./...
	go vet -tags scale ./test/benchmark/

.PHONY: lint
lint: ## Run golangci-lint (built once per machine from the Go module proxy) with hack/golangci.yml, also on the files of the tag scale.
	"$$(hack/setup-golangci-lint.sh)" run --config hack/golangci.yml ./...

.PHONY: lint-fix
lint-fix: ## Run golangci-lint and let it fix what it can (formatting, imports, and the linters that offer fixes).
	"$$(hack/setup-golangci-lint.sh)" run --config hack/golangci.yml --fix ./...

.PHONY: envtest
envtest: ## Build (once per machine) and cache kube-apiserver and etcd for envtest.
	@hack/setup-envtest.sh >/dev/null

.PHONY: helm
helm: ## Build (once per machine) and cache helm from the Go module proxy; link it as bin/helm.
	@mkdir -p bin && ln -sf "$$(hack/setup-helm.sh)" bin/helm

.PHONY: promtool
promtool: ## Build (once per machine) and cache promtool from the Go module proxy; link it as bin/promtool.
	@mkdir -p bin && ln -sf "$$(hack/setup-promtool.sh)" bin/promtool

.PHONY: test
test: verify-generated vet lint envtest helm promtool ## Run every test (unit, envtest integration, chart, e2e) against a real API server.
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" HELM="$$(hack/setup-helm.sh)" PROMTOOL="$$(hack/setup-promtool.sh)" go test ./... -p 1 -count=1 -timeout 40m $(TEST_ARGS)

.PHONY: test-cluster
test-cluster: helm ## Run test/cluster: the image (make image) installed with the chart into a real single-node cluster (hack/cluster/node.sh); needs root.
	hack/cluster/test.sh $(TEST_ARGS)

.PHONY: bench
bench: envtest ## Run the Go benchmarks (BENCH_PKGS, BENCH_ZONE_PROJECTS).
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" BENCH_ZONE_PROJECTS=$(BENCH_ZONE_PROJECTS) go test $(BENCH_PKGS) -run '^$$' -bench . -benchmem

# Projects of `make bench-scale`.
N ?= 10000

.PHONY: bench-scale
bench-scale: envtest ## Measure N projects (default 10000) end to end (convergence, single-change latency, a zone edit, memory) and metering over 10,000 and 50,000 pods; not part of make test.
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" SCALE_N=$(N) go test -tags scale ./test/benchmark/ -run '^$$' -bench '^Benchmark(Scale|MeteringPass)$$' -benchtime 1x -timeout 120m

.PHONY: fuzz
fuzz: ## Run every Go fuzz target (func FuzzX) for FUZZTIME each (default 1m; FUZZMINIMIZETIME, default 5s, caps minimizing), one after another; a crasher lands in the package's testdata/fuzz.
	@go test -list '^Fuzz' ./... | awk '/^Fuzz/ { t = t " " $$1 } /^ok / { if (t != "") print $$2 t; t = "" }' | { \
		failed=""; while read -r pkg targets; do \
			for target in $$targets; do \
				echo "== $$target ($$pkg) for $(FUZZTIME)"; \
				go test "$$pkg" -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) </dev/null || failed="$$failed $$target"; \
			done; \
		done; \
		if [ -n "$$failed" ]; then echo "Fuzz targets that failed:$$failed"; exit 1; fi; }

##@ Build

.PHONY: build
build: ## Build bin/meshstack-operator.
	CGO_ENABLED=0 go build -trimpath -o bin/meshstack-operator ./cmd

.PHONY: run
run: manifests generate ## Run the operator against the cluster in ~/.kube/config or $$KUBECONFIG.
	go run ./cmd $(ARGS)

.PHONY: demo
demo: build envtest helm ## Start a local control plane, helm install the chart, run both components under its accounts, apply config/samples.
	go build -o bin/demo ./hack/demo
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" HELM="$$(hack/setup-helm.sh)" exec bin/demo $(DEMO_ARGS)

# The archive `make image` writes, and the image reference inside it.
IMAGE_ARCHIVE ?= bin/meshstack-operator-image.tar
IMAGE_TAG ?= meshstack-operator:dev

.PHONY: image
image: ## Build the operator image as a docker-save archive (IMAGE_ARCHIVE) without a Docker engine; load it with `ctr images import` or `docker load`.
	go run ./hack/image -tag $(IMAGE_TAG) -o $(IMAGE_ARCHIVE)

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .
