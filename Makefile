# The test command README.md names is `make test`.
GO ?= go
# The version: X.Y.Z for a release (make release VERSION=X.Y.Z, tag
# vX.Y.Z), else git describe less the tag's "v".
VERSION ?= $(or $(patsubst v%,%,$(shell git describe --tags --always --dirty 2>/dev/null)),dev)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -buildid= -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# Where build writes the binary (scripts/bench.sh builds into its own
# temporary directory).
BIN ?= bin/nixglhost

.PHONY: build test fuzz fixtures vet release nixcheck reproducible-check reproducible-check-fresh
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o '$(BIN)' ./cmd/nixglhost

fixtures:
	scripts/fetch-nvidia.sh
	scripts/fetch-i386-loaders.sh
	scripts/fetch-arm64-loaders.sh

vet:
	test -z "$$(gofmt -l .)" || { gofmt -l .; echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...

# The suite runs through internal/testreport: failed tests' output in full,
# every skip with its reason, the pass/fail/skip counts last; under
# NIXGLHOST_REQUIRE_FIXTURES=1 a skip .ci/allowed-skips does not list fails.
test: fixtures vet nixcheck reproducible-check
	$(GO) run ./internal/testreport/cmd/testreport -allow .ci/allowed-skips $(GO) test -count=1 -timeout 30m -json ./...
	scripts/fuzz.sh 5000x

# Every fuzz target for FUZZTIME each (long runs: make fuzz FUZZTIME=30m).
FUZZTIME ?= 60s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

# Static binaries nixglhost-VERSION-linux-{amd64,arm64,386,arm}, completions,
# man page, the systemd unit, INSTALL.md and SHA256SUMS into dist/; each
# binary's --version is run (qemu-user where needed). make release
# VERSION=X.Y.Z is the release of the tag vX.Y.Z and refuses unless that tag
# is HEAD of a clean tree; make release alone is a snapshot.
release:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' GO='$(GO)' TAGGED='$(if $(filter command line,$(origin VERSION)),1)' scripts/release.sh dist dist

# Two builds (this tree, and a copy at another path with its own Go build
# cache) must give the same bytes; the arm64 one runs under qemu-aarch64.
# -fresh starts both from empty caches (minutes).
reproducible-check:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' GO='$(GO)' scripts/release.sh check
reproducible-check-fresh:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' GO='$(GO)' scripts/release.sh check --fresh

# The Nix files parse and evaluate, vendorHash matches go.sum (nix-bin only).
nixcheck:
	scripts/nixcheck.sh
