# pvehci build and test entry points. `make test` is the command CI runs.

GO          ?= go
BIN         ?= bin/pvehci
PKG_BUILD   := github.com/pvehci/pvehci/internal/buildinfo
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_TIME  ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS     := -s -w -X $(PKG_BUILD).version=$(VERSION) -X $(PKG_BUILD).commit=$(COMMIT) -X $(PKG_BUILD).buildTime=$(BUILD_TIME)
# staticcheck 2026.2.2; pinned so that lint results do not change under us.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEST_FLAGS  ?= -count=1 -timeout 20m
BENCH       ?= .

.PHONY: all build lab test test-race lint fmt-check vet staticcheck bench bench-cluster bench-health docs clean test-vm

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pvehci

## lab: build, start a 3-node lab and run the checked tour (scripts/lab-tour.sh).
lab: build
	PVEHCI=$(BIN) bash scripts/lab-tour.sh

## test: the default suite (unit, golden, real validators). Needs the tools .ci/run installs.
test: fmt-check vet
	$(GO) test $(TEST_FLAGS) ./...

test-race:
	$(GO) test -race $(TEST_FLAGS) ./...

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; echo "run: gofmt -w ."; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

## bench: the package benchmarks (parsers, state machine, renderers).
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count=1 $$($(GO) list ./... | grep -v -e /integration -e /lab)

## bench-cluster: the multi-process cluster benchmarks behind docs/benchmarks.md
## (about 4 minutes: real daemons, 20 leader kills, 40,000 writes, 100 spawns on a lab).
bench-cluster:
	$(GO) test -run '^$$' -bench 'Failover' -benchtime=20x -count=1 ./integration
	$(GO) test -run '^$$' -bench 'WriteLatency' -benchtime=2000x -count=1 ./integration
	$(GO) test -run '^$$' -bench 'WriteThroughput' -benchtime=5s -count=1 ./integration
	$(GO) test -run '^$$' -bench 'Scale10k' -benchtime=1x -count=1 -timeout 30m ./integration
	$(GO) test -run '^$$' -bench 'LabSpawn' -benchtime=100x -count=1 ./lab
	$(GO) test -run '^$$' -bench 'LabUp' -benchtime=5x -count=1 ./lab

## bench-health: `pvehci health` on a 3-node lab with 1,000 resources
## (docs/benchmarks.md; about 20 minutes, most of it spawning the resources).
bench-health:
	$(GO) test -run '^$$' -bench 'LabHealth1000' -benchtime=5x -count=1 -timeout 40m ./lab

docs:
	$(GO) run ./cmd/pvehci docs --dir docs/cli

clean:
	rm -rf bin

## test-vm: the VM tier: bootstrap against a real kernel and systemd in a qemu VM (root; see docs/development.md).
test-vm: build
	bash scripts/vm/build-image.sh
	PVEHCI_VM_PVEHCI=$(CURDIR)/$(BIN) $(GO) test -tags vm -exec $(CURDIR)/scripts/vm/vmexec ./bootstrap/ -run VM -v -count=1
