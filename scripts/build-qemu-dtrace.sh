#!/usr/bin/env bash
# Debian 12's QEMU 7.2 source built with the dtrace trace backend only (as RHEL/CentOS
# Stream's qemu-kvm is, SPEC 11): no log backend, a USDT probe per trace event in
# `.note.stapsdt`. The source comes through a side apt list (deb-src, bookworm main), so
# the machine's own apt sources stay as they are. Prints the wrapper's path.
#
#   scripts/build-qemu-dtrace.sh  -> $QMP_BROKER_CACHE/qemu-dtrace-<version>/qemu-system-x86_64
#
# The cache lives outside the clone (QMP_BROKER_CACHE, default /var/cache/qmp-broker), so
# CI's fresh clone on the same machine reuses it; it is keyed by the source version and
# rebuilt only when missing. The build runs under `nice` (15-30 min on two busy cores).
set -euo pipefail
log_name=build-qemu-dtrace
log() { echo "$log_name: $*" >&2; }
die() { log "error: $*"; exit 1; }
cache_root=${QMP_BROKER_CACHE:-/var/cache/qmp-broker}
src_dir="$cache_root/apt-source"
src_apt=(-o "Dir::Etc::sourcelist=$src_dir/sources.list" -o Dir::Etc::sourceparts=-
         -o "Dir::State::Lists=$src_dir/lists" -o "Dir::Cache=$src_dir/cache"
         -o APT::Get::List-Cleanup=0)
# As root, apt drops to the _apt user, which cannot write into our folders.
[ "$(id -u)" -ne 0 ] || src_apt+=(-o APT::Sandbox::User=root)

# The binary deps of the build, from the machine's own sources (explicit rather than
# `build-dep qemu`, which would pull Xen, SPICE, ... for features this build leaves out).
build_deps=(build-essential pkg-config ninja-build meson python3 libglib2.0-dev
            libpixman-1-dev libfdt-dev zlib1g-dev systemtap-sdt-dev dpkg-dev)

mkdir -p "$src_dir/lists/partial" "$src_dir/cache/archives/partial"
cat >"$src_dir/sources.list" <<LIST
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm-updates main
deb-src http://deb.debian.org/debian-security bookworm-security main
LIST
if [ -z "$(find "$src_dir/lists" -maxdepth 1 -name '*Sources*' -mtime -1 2>/dev/null)" ]; then
    log "apt-get update (bookworm deb-src, side list)"
    apt-get "${src_apt[@]}" update -qq || die "apt-get update of the deb-src side list failed"
fi
# The newest qemu source the side list knows, e.g. 1:7.2+dfsg-7+deb12u18.
version=$(apt-cache "${src_apt[@]}" showsrc qemu | awk '/^Version:/ {print $2}' | sort -V | tail -1)
[ -n "$version" ] || die "no qemu source in the deb-src side list"
plain_version=${version#*:}
root=$cache_root/qemu-dtrace-$plain_version
wrapper=$root/qemu-system-x86_64
if [ -x "$wrapper" ] && [ -x "$root/bin/qemu-system-x86_64" ]; then
    echo "$wrapper"
    exit 0
fi

missing=()
for package in "${build_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing build deps: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
fi

work=$cache_root/qemu-dtrace-build
rm -rf "$work"
mkdir -p "$work"
log "apt-get source qemu=$version"
(cd "$work" && apt-get "${src_apt[@]}" source -q "qemu=$version" >/dev/null) || die "apt-get source qemu=$version failed"
source_tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -1)
[ -n "$source_tree" ] || die "apt-get source left no qemu-* folder in $work"

# Only what the tests' machine needs (q35, pcie-root-port, virtio, qtest, TCG and KVM);
# every optional feature off so nothing but the dtrace backend can trace.
log "configuring $source_tree"
mkdir -p "$source_tree/build-dtrace"
(cd "$source_tree/build-dtrace" && ../configure --target-list=x86_64-softmmu \
    --enable-trace-backends=dtrace --without-default-features --enable-tcg --enable-kvm \
    --enable-fdt=system --disable-werror --disable-docs --disable-debug-info \
    >"$work/configure.log" 2>&1) || die "configure failed: $(tail -20 "$work/configure.log")"
log "building (nice, $(nproc) jobs; see $work/build.log)"
started=$(date +%s)
(cd "$source_tree/build-dtrace" && nice -n 10 ninja -j "$(nproc)" qemu-system-x86_64 >"$work/build.log" 2>&1) \
    || die "build failed: $(tail -30 "$work/build.log")"
log "built in $(( $(date +%s) - started )) s"
binary=$source_tree/build-dtrace/qemu-system-x86_64
# Through a file: `readelf | grep -q` fails under pipefail when grep stops reading early.
readelf -n "$binary" >"$work/notes.txt"
for probe in pci_cfg_write monitor_qmp_cmd_in_band resettable_phase_enter_begin resettable_phase_exit_end; do
    grep -q "Name: $probe\$" "$work/notes.txt" || die "$binary has no $probe USDT probe"
done
log "$(grep -c 'Provider: qemu' "$work/notes.txt") USDT probes in .note.stapsdt"

rm -rf "$root.part"
mkdir -p "$root.part/bin"
cp "$binary" "$root.part/bin/qemu-system-x86_64"
cat >"$root.part/qemu-system-x86_64" <<WRAP
#!/bin/sh
# The system's firmware (qemu-system-data, seabios, ipxe-qemu): this build installs none.
exec "$root/bin/qemu-system-x86_64" -L /usr/share/qemu -L /usr/share/seabios -L /usr/lib/ipxe/qemu "\$@"
WRAP
chmod 0755 "$root.part/qemu-system-x86_64"
echo "$version" >"$root.part/stamp"
rm -rf "$root"
mv "$root.part" "$root"
"$wrapper" --version | head -1 | grep -q 'version 7\.2' || die "$wrapper does not run: $("$wrapper" --version 2>&1 | head -3)"
rm -rf "$work"
log "dtrace QEMU ready: $wrapper"
echo "$wrapper"
