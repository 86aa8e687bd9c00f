SHELL := /bin/bash
# qmp-broker: the two entry points a new user needs are `make demo` and `make test`.
SWIFT ?= swift
BUILD_FLAGS ?=
BIN = .build/debug/qmp-broker

.PHONY: setup build demo test unit integration bench clean

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build $(BUILD_FLAGS)

# Installs what is missing, builds, and runs the embedded demo against a real QEMU.
demo: build
	$(BIN) demo

# The whole suite: pure unit tests, then real-QEMU integration tests and third-party clients.
test: build
	$(SWIFT) test $(BUILD_FLAGS) --no-parallel 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}

unit: build
	$(SWIFT) test $(BUILD_FLAGS) --skip IntegrationTests

integration: build
	$(SWIFT) test $(BUILD_FLAGS) --filter IntegrationTests

bench: setup
	$(SWIFT) build -c release
	.build/release/qmp-broker-bench

clean:
	rm -rf .build
