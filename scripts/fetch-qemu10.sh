#!/usr/bin/env bash
# QEMU 10.0 (Debian stable's, from bookworm-backports) beside the system's 7.2: the debs
# are fetched with `apt-get download` through a side apt list, unpacked with `dpkg -x`
# into a private root and run through a wrapper that passes `-L` for their firmware.
# They need only bookworm's libraries. Prints the wrapper's path.
#
#   scripts/fetch-qemu10.sh        -> $QMP_BROKER_CACHE/qemu-10.0.2/qemu-system-x86_64
#
# The cache lives outside the clone (QMP_BROKER_CACHE, default /var/cache/qmp-broker), so
# CI's fresh clone on the same machine reuses it; it is keyed by the package versions.
set -euo pipefail
log_name=fetch-qemu10
log() { echo "$log_name: $*" >&2; }
die() { log "error: $*"; exit 1; }
cache_root=${QMP_BROKER_CACHE:-/var/cache/qmp-broker}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/backports.sh
. "$here/lib/backports.sh"

qemu_version=1:10.0.2+ds-2+deb13u1~bpo12+1
seabios_version=1.16.3-2~bpo12+1
packages=("qemu-system-x86=$qemu_version" "qemu-system-common=$qemu_version" "qemu-system-data=$qemu_version"
          "seabios=$seabios_version")
root=$cache_root/qemu-10.0.2
wrapper=$root/qemu-system-x86_64
stamp="${packages[*]}"

if [ -x "$wrapper" ] && [ "$(cat "$root/stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$wrapper"
    exit 0
fi
backports_update
backports_download "$cache_root/debs" "${packages[@]}"
rm -rf "$root.part"
mkdir -p "$root.part/root"
for spec in "${packages[@]}"; do
    name=${spec%%=*} version=${spec#*=}
    deb=$(ls "$cache_root/debs/${name}_${version//:/%3a}_"*.deb)
    dpkg-deb -x "$deb" "$root.part/root"
done
# The firmware first from the private root (QEMU 10's own ROMs and SeaBIOS 1.16.3), then
# the system's ipxe ROMs, which the 10.0 data package links to.
cat >"$root.part/qemu-system-x86_64" <<WRAP
#!/bin/sh
# Its modules (ui, audio, ...) from the private root, not the system 7.2 ones.
QEMU_MODULE_DIR="$root/root/usr/lib/x86_64-linux-gnu/qemu" exec "$root/root/usr/bin/qemu-system-x86_64" -L "$root/root/usr/share/qemu" -L "$root/root/usr/share/seabios" -L /usr/lib/ipxe/qemu "\$@"
WRAP
chmod 0755 "$root.part/qemu-system-x86_64"
echo "$stamp" >"$root.part/stamp"
rm -rf "$root"
mv "$root.part" "$root"
# The wrapper names its final folder: check it only after the move.
"$wrapper" --version | head -1 | grep -q 'version 10\.0' || die "$wrapper does not run: $("$wrapper" --version 2>&1 | head -3)"
log "QEMU 10 ready: $wrapper"
echo "$wrapper"
