# wharf — see README.md. Every target works on a fresh clone as root.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:$(CURDIR)/.cache/bin
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
# wharf-runtime alone uses cgo when gcc and a static libc are there: a C constructor joins
# existing user and time namespaces before Go starts its threads (docs/ARCHITECTURE.md, runtime);
# linked statically. Without them it builds as pure Go, without that one ability.
RT_CGO := $(shell command -v gcc >/dev/null 2>&1 && test -f /usr/lib/$$(gcc -print-multiarch 2>/dev/null)/libc.a && echo 1 || echo 0)
RT_STATIC := $(if $(filter 1,$(RT_CGO)),-linkmode external -extldflags -static)
export WHARF_BIN := $(BIN)

.PHONY: all build deps demo test vet unit images integration bench-smoke bench clean fmt

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/wharf ./cmd/wharf
	CGO_ENABLED=$(RT_CGO) $(GO) build -trimpath -tags osusergo,netgo -ldflags "$(LDFLAGS) $(RT_STATIC)" -o $(BIN)/wharf-runtime ./cmd/wharf-runtime

deps:
	./hack/install-deps.sh

demo: deps build
	./hack/demo.sh

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

# The test images (hack/images.sh), built once into .cache/images.
images: build
	./hack/images.sh all

# WHARF_PEERS=1 makes the integration tests fail (not skip) when a peer is missing.
integration: build images
	WHARF_PEERS=1 ./hack/test-integration.sh

# Every benchmark of bench/ in its quick mode: each must run and print its RESULT line (the
# figures are printed, never judged). `make bench` runs them in full.
bench-smoke: build images
	./hack/test-bench.sh

bench: build images
	for b in bench/*.sh; do "$$b"; done

test: deps build vet unit integration bench-smoke

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) .cache/work .cache/bench
