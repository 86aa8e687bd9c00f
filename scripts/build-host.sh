#!/usr/bin/env bash
# Builds the nested "host" of the host end-to-end test (SPEC section 10): a QEMU
# TCG guest whose Debian 6.1 kernel binds an emulated PCIe endpoint to the real
# vfio-pci driver, and runs the build machine's own /usr (QEMU, python3, socat)
# and the built broker over read-only 9p. Nothing is compiled.
#
#   scripts/build-host.sh [OUTDIR]        (default: .cache/host, git-ignored)
#
# Outputs:  OUTDIR/initramfs.gz   busybox + 9p, virtio_pci and vfio modules + /init
#           OUTDIR/stamp          kernel version + hash of the scripts
# The kernel is the e2e guest's (scripts/build-guest.sh, run first: .cache/guest/vmlinux,
# booted through PVH), from the same downloaded .deb; this script downloads nothing else.
#
# What /init does (scripts/boot-host.sh passes its settings on the kernel command line):
#   1. mounts /dev, /proc, /sys; sets driver_override=vfio-pci on 0000:01:00.0 before
#      any driver is loaded, so virtio_pci never claims the endpoint;
#   2. loads the modules: 9p (netfs, fscache, 9pnet, 9pnet_virtio), virtio_pci, then the
#      vfio stack in order irqbypass, vfio, vfio_virqfd, vfio_iommu_type1, vfio-pci-core,
#      vfio-pci (which binds the endpoint: /dev/vfio/N appears);
#   3. builds a root on tmpfs from the 9p shares: /usr, /etc, the Swift runtime and the
#      project folder read-only at their own paths, the results folder read-write at
#      /results; bin, lib, lib64, sbin as symlinks into usr (merged /usr); fresh proc,
#      sys, dev (+ pts, shm), tmp, run;
#   4. prints `HOST-READY <uptime>` and runs `e2e_run` (an absolute path, from the
#      kernel command line) chrooted, with cwd the project folder; its exit status goes
#      to /results/exit-status, then the host powers off.
set -euo pipefail

outdir=${1:-.cache/host}
modules=(9p 9pnet_virtio virtio_pci irqbypass vfio vfio_virqfd vfio_iommu_type1 vfio-pci-core vfio-pci)

log_name=build-host
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=lib/debian-boot.sh
. "$here/lib/debian-boot.sh"

"$here/build-guest.sh" "$repo/.cache/guest"   # the kernel and the cached .debs
resolve_packages
script_hash=$(cat "${BASH_SOURCE[0]}" "$here/lib/debian-boot.sh" | sha256sum | cut -d' ' -f1)
stamp="$kernel_pkg=$kernel_ver busybox-static=$busybox_ver script=$script_hash"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
if [ -s "$outdir/initramfs.gz" ] && [ "$(cat "$outdir/stamp" 2>/dev/null)" = "$stamp" ]; then
    log "up to date in $outdir ($kernel_pkg $kernel_ver)"
    exit 0
fi

fetch_packages "$repo/.cache/guest/debs"   # already there: build-guest.sh fetched them
initramfs_start "${modules[@]}"

# PID 1 of the nested host. Settings come from the kernel command line as
# environment variables: e2e_repo, e2e_swift, e2e_run, e2e_device. Before any
# module loads (virtio_pci would claim it) the endpoint is set aside for vfio-pci.
# shellcheck disable=SC2016 # a line of /init, expanded there
{ init_prelude; echo 'echo vfio-pci >"/sys/bus/pci/devices/$e2e_device/driver_override"'; init_load_modules; cat <<'EOF'; } >"$root/init"
say() { echo "init: $*"; }
driver=$(readlink "/sys/bus/pci/devices/$e2e_device/driver" 2>/dev/null) || driver=none
say "$e2e_device driver ${driver##*/}, iommu group $(basename "$(readlink "/sys/bus/pci/devices/$e2e_device/iommu_group")")"

new=/newroot
mkdir -p $new
mount -t tmpfs -o mode=755 tmpfs $new
share() { # tag mountpoint options
    mkdir -p "$new$2"
    mount -t 9p -o "trans=virtio,version=9p2000.L,$3" "$1" "$new$2" || say "mount $1 at $2 failed"
}
# Fresh tmp and run first: the shares go on top, so a checkout under /tmp (as CI's may
# be) stays visible.
mkdir -p $new/proc $new/sys $new/dev $new/tmp $new/run $new/root $new/var/tmp
mount -t tmpfs tmpfs $new/tmp
mount -t tmpfs tmpfs $new/run
share usr /usr ro,msize=512000,cache=loose
share etc /etc ro,msize=512000,cache=loose
share swift "$e2e_swift" ro,msize=512000,cache=loose
share repo "$e2e_repo" ro,msize=512000,cache=loose
share results /results msize=512000
for link in bin lib lib64 sbin; do ln -s usr/$link $new/$link; done
mount -t proc proc $new/proc
mount -t sysfs sysfs $new/sys
mount -t devtmpfs devtmpfs $new/dev
mkdir -p $new/dev/pts $new/dev/shm
mount -t devpts devpts $new/dev/pts
mount -t tmpfs tmpfs $new/dev/shm
hostname e2e-host
echo "HOST-READY $(cut -d' ' -f1 /proc/uptime)"
chroot $new /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin HOME=/root \
    E2E_REPO="$e2e_repo" /bin/sh -c 'cd "$E2E_REPO" && exec "$0"' "$e2e_run"
status=$?
echo "$status" >$new/results/exit-status
say "scenario exited with status $status"
sync
poweroff -f
EOF
chmod 755 "$root/init"

initramfs_pack "$root" "$outdir/initramfs.gz.tmp"
mv "$outdir/initramfs.gz.tmp" "$outdir/initramfs.gz"
echo "$stamp" >"$outdir/stamp"
log "built in $outdir ($kver): initramfs.gz $(size "$outdir/initramfs.gz")"
