# gohsm — see README.md. `make run` and `make test` do all set-up on a fresh
# Debian 12 machine with Go; everything else here is a step of those two.
GO      ?= go
BUILD   ?= build
export CGO_ENABLED = 1

GOFILES := $(shell find . -name '*.go' -not -path './build/*' 2>/dev/null) go.mod go.sum

.PHONY: all build deps run test test-go test-clients vet install clean

all: build

deps:
	@scripts/install-deps.sh

build: $(BUILD)/libgohsm.so $(BUILD)/gohsm

$(BUILD)/libgohsm.so: $(GOFILES) $(wildcard pkcs11shim/*.c pkcs11shim/*.h)
	@mkdir -p $(BUILD)
	$(GO) build -buildmode=c-shared -trimpath -o $@ ./pkcs11shim
	@rm -f $(BUILD)/libgohsm.h

$(BUILD)/gohsm: $(GOFILES)
	@mkdir -p $(BUILD)
	$(GO) build -trimpath -o $@ ./cmd/gohsm

run: deps build
	@$(BUILD)/gohsm run --module $(CURDIR)/$(BUILD)/libgohsm.so

vet:
	$(GO) vet ./...

test-go:
	$(GO) test -count=1 ./...

test-clients: build
	@tests/clients/run.sh $(CURDIR)/$(BUILD)/libgohsm.so

test: deps build vet test-go test-clients

install: build
	install -D -m 0755 $(BUILD)/libgohsm.so $(DESTDIR)/usr/local/lib/gohsm/libgohsm.so
	install -D -m 0644 pkcs11shim/gohsm.module $(DESTDIR)/usr/share/p11-kit/modules/gohsm.module

clean:
	rm -rf $(BUILD)
