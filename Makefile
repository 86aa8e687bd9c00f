SHELL := /bin/bash
# qmp-broker: the two entry points a new user needs are `make demo` and `make test`.
SWIFT ?= swift
BUILD_FLAGS ?=
BIN = .build/debug/qmp-broker

.PHONY: setup build demo test unit integration e2e guest bench fuzz fuzz-regress clean

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build $(BUILD_FLAGS)

# Installs what is missing, builds, and runs the embedded demo against a real QEMU.
demo: build
	$(BIN) demo

# The whole suite: pure unit tests, real-QEMU integration tests, third-party clients,
# and the end-to-end run with a real Linux guest (built once into .cache/guest).
test: build guest
	$(SWIFT) test $(BUILD_FLAGS) 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}

# The tiny guest: Debian's kernel and busybox-static, downloaded with apt-get once.
guest: setup
	scripts/build-guest.sh

e2e: build guest
	$(SWIFT) test $(BUILD_FLAGS) --filter E2E

unit: build
	$(SWIFT) test $(BUILD_FLAGS) --skip IntegrationTests

integration: build
	$(SWIFT) test $(BUILD_FLAGS) --filter IntegrationTests

bench: setup
	$(SWIFT) build -c release
	.build/release/qmp-broker-bench

# libFuzzer over the wire path (Fuzz/), seeded with real QMP traffic: `make fuzz SECONDS=600`.
SECONDS ?= 60
fuzz:
	nice -n 19 scripts/fuzz.sh $(SECONDS)

# Every committed seed and crash input, once.
fuzz-regress:
	scripts/fuzz.sh 0 regress

clean:
	rm -rf .build
