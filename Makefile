# wharf — see README.md. Every target works on a fresh clone as root.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:$(CURDIR)/.cache/bin
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
SHARED ?= $(abspath $(CURDIR)/../shared)
export WHARF_SHARED := $(SHARED)
export WHARF_BIN := $(BIN)

.PHONY: all build deps demo test vet unit integration clean fmt

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/wharf ./cmd/wharf
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/wharf-runtime ./cmd/wharf-runtime

deps:
	./hack/install-deps.sh

demo: deps build
	./hack/demo.sh

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

# WHARF_PEERS=1 makes the integration tests fail (not skip) when a peer is missing.
integration: build
	WHARF_PEERS=1 ./hack/test-integration.sh

test: deps build vet unit integration

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) .cache/work
