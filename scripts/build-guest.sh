#!/usr/bin/env bash
# Builds the tiny Linux guest used by the end-to-end tests (SPEC section 9):
# Debian 12's own kernel and a busybox initramfs, nothing compiled.
#
#   scripts/build-guest.sh [OUTDIR]        (default: .cache/guest, git-ignored)
#
# Outputs:  OUTDIR/vmlinuz        Debian's signed 6.1 kernel image (~8 MB)
#           OUTDIR/vmlinux        the same kernel uncompressed (ELF, ~66 MB), booted
#                                 through PVH: saves ~4.5 s per boot under TCG
#           OUTDIR/initramfs.gz   busybox + virtio/e1000e modules + /init (~1.3 MB)
#           OUTDIR/stamp          package versions + hash of this script
#           OUTDIR/debs/          the downloaded .debs (kept so rebuilds need no
#                                 download; replaced when a newer version appears)
#
# Downloads (Debian archive only, with `apt-get download`, once per version):
#   linux-image-6.1.0-N-amd64   the package linux-image-amd64 depends on;
#                               ~70 MB .deb (6.1.0-56: 70.5 MB, 400 MB unpacked)
#   busybox-static              ~0.9 MB .deb (1:1.35.0-4+deb12u1+b1)
#
# The guest's /init mounts proc/sys/dev, loads virtio_pci, virtio_rng and e1000e
# (modules in Debian's kernel; PCIe, AER and pciehp are built in), prints `GUEST-READY`
# on ttyS0 and then runs a shell on the serial console, so a test can type
# commands (e.g. `reboot -f`). Kernel messages stay on the console (dmesg -n 8).
#
# Idempotent: when OUTDIR/stamp matches the current package versions and this
# script, nothing is downloaded or rebuilt. Needs: apt-get/apt-cache, dpkg-deb,
# gzip, xz (for vmlinux); `cpio` if installed, else busybox's cpio. No root needed
# unless the apt lists are missing (then `apt-get update` runs).
set -euo pipefail

outdir=${1:-.cache/guest}
# Guest drivers for the test devices: virtio-rng-pci (reports AER itself) and
# e1000e (cannot report in QEMU 7.2, but its Linux driver has AER callbacks).
modules=(virtio_pci virtio_rng e1000e)

log_name=build-guest
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/debian-boot.sh
. "$here/lib/debian-boot.sh"

resolve_packages
script_hash=$(cat "${BASH_SOURCE[0]}" "$here/lib/debian-boot.sh" | sha256sum | cut -d' ' -f1)
stamp="$kernel_pkg=$kernel_ver busybox-static=$busybox_ver script=$script_hash"

mkdir -p "$outdir/debs"
outdir=$(cd "$outdir" && pwd)
if [ -s "$outdir/vmlinuz" ] && [ -s "$outdir/initramfs.gz" ] && { [ -s "$outdir/vmlinux" ] || ! command -v xz >/dev/null; } &&
   [ "$(cat "$outdir/stamp" 2>/dev/null)" = "$stamp" ]; then
    log "up to date in $outdir ($kernel_pkg $kernel_ver, busybox-static $busybox_ver)"
    exit 0
fi

# --- Download the two .debs (kept in OUTDIR/debs, old versions dropped) ------
fetch_packages "$outdir/debs"

# --- Unpack and assemble the initramfs tree -----------------------------------
initramfs_start "${modules[@]}"

# PID 1 of the e2e guest: the shared prelude, its modules, then this.
{ init_prelude; init_load_modules; cat <<'EOF'; } >"$root/init"
hostname e2e-guest
for dev in /sys/bus/pci/devices/*; do   # e.g. "init: pci 0000:01:00.0 1af4:1044 virtio-pci"
    driver=$(readlink "$dev/driver" 2>/dev/null) || driver=/none
    echo "init: pci ${dev##*/} $(sed 's/^0x//' "$dev/vendor"):$(sed 's/^0x//' "$dev/device") ${driver##*/}"
done
echo "init: kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s"
echo GUEST-READY
# A shell on the serial console that owns it as controlling tty; restart it if
# it exits so PID 1 never dies (that would panic the kernel).
while :; do
    setsid cttyhack sh -l
done
EOF
chmod 755 "$root/init"
echo 'export PS1="e2e-guest# "' >"$root/etc/profile"

initramfs_pack "$root" "$outdir/initramfs.gz.tmp"
cp "$work/kernel/boot/vmlinuz-$kver" "$outdir/vmlinuz.tmp"

# --- Uncompressed vmlinux for PVH boot --------------------------------------
# Under TCG the kernel's own xz decompression takes ~4.5 s of every boot. The
# kernel has CONFIG_PVH, so QEMU can boot the ELF vmlinux directly (-kernel
# vmlinux); boot-guest.sh prefers it. Extracted like linux/scripts/extract-vmlinux:
# the xz stream starts at its magic; xz complains about the trailing data.
rm -f "$outdir/vmlinux"
offset=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$outdir/vmlinuz.tmp" | head -1 | cut -d: -f1 || true)
if [ -n "$offset" ] && command -v xz >/dev/null; then
    tail -c +$((offset + 1)) "$outdir/vmlinuz.tmp" | xz -dc >"$outdir/vmlinux.tmp" 2>/dev/null || true
    if [ "$(head -c 4 "$outdir/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
        mv "$outdir/vmlinux.tmp" "$outdir/vmlinux"
    else
        log "warning: could not extract vmlinux; boots will use vmlinuz"; rm -f "$outdir/vmlinux.tmp"
    fi
fi
mv "$outdir/vmlinuz.tmp" "$outdir/vmlinuz"
mv "$outdir/initramfs.gz.tmp" "$outdir/initramfs.gz"
echo "$stamp" >"$outdir/stamp"
log "built in $outdir ($kver): vmlinuz $(size "$outdir/vmlinuz"), initramfs.gz $(size "$outdir/initramfs.gz")$([ ! -s "$outdir/vmlinux" ] || echo ", vmlinux $(size "$outdir/vmlinux")")"
