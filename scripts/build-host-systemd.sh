#!/usr/bin/env bash
# The nested host of scripts/build-host.sh with systemd as PID 1 (the host e2e test's
# `+systemd` configuration). The cached host folder stays as it is: this adds a second
# cpio archive after its initramfs.gz (the kernel unpacks concatenated archives) with
#   /init-systemd   the PID 1 to boot with (rdinit=/init-systemd, scripts/boot-host.sh)
#   /lib/modules/e2e-systemd/overlay.ko   from the same kernel package (overlayfs is a
#                   module in Debian's kernels; the root's /usr, /etc and /var/lib/dpkg
#                   are overlays on the read-only shares)
#
#   scripts/build-host-systemd.sh [6.1|6.12]   -> prints the output folder
#
# Output: $QMP_BROKER_CACHE/host-KVER-systemd/ with vmlinux (a symlink into the base
# folder), initramfs.gz and stamp. Cached: about a second when nothing changed.
#
# /init-systemd sources the base /init with `poweroff` redefined: /init builds the
# root from the shares and runs e2e_run chrooted (Tests/HostE2E/systemd_root.py, which
# makes the overlays and the boot target and leaves /.e2e-systemd); where /init would
# power off, /init-systemd switches root to /lib/systemd/systemd instead.
set -euo pipefail

flavour=${1:-6.1}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${QMP_BROKER_CACHE:-/var/cache/qmp-broker}
base=$("$here/build-host.sh" "$flavour")
outdir=${base%/}-systemd
kver=$(cat "$base/kernel-release")
stamp="$(cat "$base/stamp") systemd=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
if [ -s "$outdir/initramfs.gz" ] && [ "$(cat "$outdir/stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$outdir"
    exit 0
fi

# The kernel package build-host.sh unpacked (its version is in the stamp).
kernel_deb=$(ls "$cache_root"/debs/linux-image-"$kver"_*.deb 2>/dev/null | head -1)
[ -n "$kernel_deb" ] || kernel_deb=$(ls "$cache_root"/debs/linux-image-"$kver"-unsigned_*.deb 2>/dev/null | head -1)
[ -n "$kernel_deb" ] || { echo "build-host-systemd: no kernel package for $kver in $cache_root/debs" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/build-host-systemd.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/lib/modules/e2e-systemd" "$work/kernel"
dpkg-deb --fsys-tarfile "$kernel_deb" | tar -x -C "$work/kernel" --wildcards './lib/modules/*/kernel/fs/overlayfs/*'
module=$(find "$work/kernel" -name 'overlay.ko*' | head -1)
[ -n "$module" ] || { echo "build-host-systemd: no overlay.ko in $kernel_deb" >&2; exit 1; }
case "$module" in
    *.xz) xz -dc "$module" ;;
    *.zst) zstd -dcq "$module" ;;
    *) cat "$module" ;;
esac >"$work/root/lib/modules/e2e-systemd/overlay.ko"

cat >"$work/root/init-systemd" <<'EOF'
#!/bin/sh
insmod /lib/modules/e2e-systemd/overlay.ko || echo "init-systemd: insmod overlay.ko failed"
poweroff() {
    if [ -e /newroot/.e2e-systemd ]; then
        echo "init-systemd: switching root to systemd"
        exec switch_root /newroot /lib/systemd/systemd
    fi
    /bin/busybox poweroff "$@"
}
. /init
EOF
chmod 755 "$work/root/init-systemd"
mkdir -p "$outdir"
{
    cat "$base/initramfs.gz"
    (cd "$work/root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -9
} >"$outdir/initramfs.gz.tmp"
ln -sfn "$base/vmlinux" "$outdir/vmlinux"
echo "$kver" >"$outdir/kernel-release"
mv "$outdir/initramfs.gz.tmp" "$outdir/initramfs.gz"
echo "$stamp" >"$outdir/stamp"
echo "$outdir"
