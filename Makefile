SHELL := /bin/bash
# qmp-broker: the two entry points a new user needs are `make demo` and `make test`.
SWIFT ?= swift
BUILD_FLAGS ?=
BIN = .build/debug/qmp-broker

.PHONY: qemu-dtrace qemu10 setup build demo test install-check release-static package-check fleet-check unit integration e2e libvirt-e2e guest host host-e2e host-e2e-iommufd sanitize bench fuzz fuzz-diff fuzz-regress clean install

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build $(BUILD_FLAGS)

# Installs what is missing, builds, and runs the embedded demo against a real QEMU.
demo: build
	$(BIN) demo

# The whole suite: pure unit tests, real-QEMU integration tests, third-party clients,
# the end-to-end run with a real Linux guest (built once into .cache/guest), then the
# host end-to-end test against the real kernel's vfio-pci in a nested host, and last the broker
# beside a real libvirt (Tests/Libvirt, about 70 s; it starts virtlogd and libvirtd if needed). In between,
# `make install` into a scratch PREFIX and its files checked (install-check: a release
# build, about 3 minutes from scratch on 2 cores; SwiftPM's lock on .build keeps it
# from overlapping swift test).
test: build guest host qemu10 qemu-dtrace
	$(SWIFT) test $(BUILD_FLAGS) 2>&1 | tee .build/test.log; status=$${PIPESTATUS[0]}; \
	scripts/check-install.sh 2>&1 | tee .build/install-check.log; install=$${PIPESTATUS[0]}; \
	scripts/check-package.sh 2>&1 | tee .build/package-check.log; package=$${PIPESTATUS[0]}; \
	Tests/Fleet/fleet_test.py 2>&1 | tee .build/fleet.log; fleet=$${PIPESTATUS[0]}; \
	Tests/HostE2E/host_e2e.py 2>&1 | tee .build/host-e2e.log; host=$${PIPESTATUS[0]}; \
	Tests/Libvirt/libvirt_e2e.py 2>&1 | tee .build/libvirt-e2e.log; libvirt=$${PIPESTATUS[0]}; \
	[ $$status -eq 0 ] && [ $$install -eq 0 ] && [ $$package -eq 0 ] && [ $$fleet -eq 0 ] && [ $$host -eq 0 ] && [ $$libvirt -eq 0 ]

# make install PREFIX=<scratch>, then each installed file loaded the way its consumer
# loads it (man -l, bash/zsh/fish, systemd-analyze verify, promtool check rules).
install-check: setup
	scripts/check-install.sh

# dpkg-buildpackage (debian/), lintian, and the .deb installed with apt into a bare bookworm
# root without Swift (mmdebstrap, cached in $${QMP_BROKER_CACHE:-/var/cache/qmp-broker}),
# where it serves a QEMU of this machine. The .debs land in .build/deb.
package-check: setup
	scripts/check-package.sh

# Debian's Prometheus scrapes two brokers in front of real QEMUs; QMPBrokerVMUnprotected
# fires when one VM loses its link-reset watch and resolves when it is back.
fleet-check: build
	Tests/Fleet/fleet_test.py

# Debian stable's QEMU 10.0 beside the system's 7.2, for the tests that run on both
# (bookworm-backports' debs unpacked into $(QMP_BROKER_CACHE), outside the clone).
qemu10: setup
	scripts/fetch-qemu10.sh >/dev/null

# Debian's QEMU 7.2 source built with the dtrace trace backend only (USDT probes, no log
# backend), cached outside the clone; built once (15-30 min), for the guest-reset tests.
qemu-dtrace: setup
	scripts/build-qemu-dtrace.sh

# The tiny guest: Debian's kernel and busybox-static, downloaded with apt-get once.
guest: setup
	scripts/build-guest.sh

# The nested hosts: Debian's 6.1 and 6.12 kernels with vfio-pci, and QEMU 10, sharing this
# machine's /usr; cached outside the clone ($QMP_BROKER_CACHE, default /var/cache/qmp-broker).
host: setup
	scripts/build-host.sh 6.1 >/dev/null && scripts/build-host.sh 6.12 >/dev/null && scripts/fetch-qemu10.sh >/dev/null
	scripts/build-host-systemd.sh 6.1 >/dev/null

# Boots each nested host configuration (6.1 + QEMU 7.2, 6.12 + QEMU 10, an SR-IOV VF, and
# 6.1 with systemd as PID 1 running the .deb's unit, built by scripts/check-package.sh
# when missing) and runs Tests/HostE2E's scenarios in it (SPEC sections 10 and 11).
host-e2e: build host
	Tests/HostE2E/host_e2e.py

# The broker on a second monitor of a libvirt domain (Debian's libvirt 9.0; starts virtlogd and
# libvirtd when they are not running, and stops only those): Tests/Libvirt, about a minute.
libvirt-e2e: build
	Tests/Libvirt/libvirt_e2e.py

# The same scenarios on QEMU's iommufd backend: Debian's 6.12 lacks CONFIG_IOMMUFD, so five
# modules are rebuilt from linux-source-6.12 first (scripts/build-iommufd-modules.sh; cached
# outside the clone, see Tests/HostE2E/README.md for its time).
host-e2e-iommufd: build host
	scripts/build-host.sh 6.12-iommufd >/dev/null
	Tests/HostE2E/host_e2e.py --config 6.12+qemu10+iommufd

e2e: build guest
	$(SWIFT) test $(BUILD_FLAGS) --filter E2E

unit: build
	$(SWIFT) test $(BUILD_FLAGS) --skip IntegrationTests

integration: build
	$(SWIFT) test $(BUILD_FLAGS) --filter IntegrationTests

# The whole suite under AddressSanitizer, then ThreadSanitizer (own builds in .build-asan and
# .build-tsan; not part of `make test`). SANITIZE_FILTER=Target narrows it.
sanitize: setup guest
	scripts/sanitize.sh

bench: setup
	$(SWIFT) build -c release
	.build/release/qmp-broker-bench

# libFuzzer over the wire path (Fuzz/), seeded with real QMP traffic: `make fuzz SECONDS=600`.
SECONDS ?= 60
fuzz:
	nice -n 19 scripts/fuzz.sh $(SECONDS)

# Differential: the corpus a fuzzing run grew, sent to QEMU directly and through the broker
# (about 0.6 s per input); the replies must be the same bytes.
fuzz-diff: build
	QMP_DIFF_CORPUS=$(CURDIR)/.build/fuzz/corpus $(SWIFT) test $(BUILD_FLAGS) --filter FuzzDifferentialTests

# Every committed seed and crash input, once.
fuzz-regress:
	scripts/fuzz.sh 0 regress

# make install PREFIX=/usr/local [DESTDIR=...]: release binary, systemd unit, man page
# (generated from the argument parser), shell completions and the Prometheus rules.
PREFIX ?= /usr/local
DESTDIR ?=
MAN_OUT = .build/plugins/GenerateManual/outputs/qmp-broker
# The release binary links the Swift runtime statically: it runs on a host without the
# toolchain (glibc, libstdc++, libjansson4, libsqlite3-0 only).
release-static:
	$(SWIFT) build -c release --static-swift-stdlib --product qmp-broker

# The man page comes from the debug build: the plugin builds every product in the
# configuration it is given, and a release one would relink the binary without the
# static runtime.
install: release-static
	$(SWIFT) package plugin generate-manual --configuration debug --authors "qmp-broker developers"
	install -D -m 0755 .build/release/qmp-broker $(DESTDIR)$(PREFIX)/bin/qmp-broker
	@# The generator copies the help's blank lines, which mdoc warns about: make them paragraph breaks.
	sed 's/^$$/.Pp/' $(MAN_OUT)/qmp-broker.1 > .build/qmp-broker.1
	install -D -m 0644 .build/qmp-broker.1 $(DESTDIR)$(PREFIX)/share/man/man1/qmp-broker.1
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	sed 's|/usr/local/bin/qmp-broker|$(PREFIX)/bin/qmp-broker|g' contrib/qmp-broker.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/qmp-broker.service
	.build/release/qmp-broker --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/qmp-broker
	.build/release/qmp-broker --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_qmp-broker
	.build/release/qmp-broker --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/qmp-broker.fish
	install -D -m 0644 contrib/qmp-broker.rules.yml $(DESTDIR)$(PREFIX)/share/qmp-broker/qmp-broker.rules.yml

clean:
	rm -rf .build .build-asan .build-tsan
