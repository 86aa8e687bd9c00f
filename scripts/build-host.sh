#!/usr/bin/env bash
# Builds the nested "host" of the host end-to-end test (SPEC sections 10 and 11): a QEMU
# TCG guest whose Debian kernel binds an emulated PCIe endpoint to the real vfio-pci
# driver, and runs the build machine's own /usr (QEMU, python3, socat) and the built
# broker over read-only 9p. Nothing is compiled.
#
#   scripts/build-host.sh [6.1|6.12|6.12-iommufd]   (default 6.1) -> prints the output folder
#
# Kernels:  6.1   Debian 12's own (the package linux-image-amd64 depends on)
#           6.12  Debian stable's, linux-image-6.12.95+deb12-amd64-unsigned from
#                 bookworm-backports through the side apt list of scripts/lib/backports.sh
#           6.12-iommufd  the same kernel image with iommufd and a vfio with cdev support,
#                 rebuilt from Debian's source (scripts/build-iommufd-modules.sh)
# Output:   $QMP_BROKER_CACHE/host-KVER[-iommufd]/   (default cache /var/cache/qmp-broker, outside
#           the clone, so a fresh clone on the same machine reuses it)
#             vmlinux        the kernel uncompressed (ELF), booted through PVH
#             initramfs.gz   busybox + 9p, vfio (and on 6.12 igb, igbvf, aer_inject) + /init
#             kernel-release uname -r of that kernel
#             stamp          package versions + hash of the scripts
# The .debs are kept in $QMP_BROKER_CACHE/debs.
#
# What /init does (scripts/boot-host.sh passes its settings on the kernel command line):
#   1. mounts /dev, /proc, /sys; for each address in e2e_vfio (comma-separated) lets go
#      of any driver (virtio_pci is built into 6.12) and sets driver_override=vfio-pci;
#   2. loads the modules: 9p (netfs, 9pnet, 9pnet_virtio), virtio_pci where it is a
#      module, the vfio stack in order irqbypass, vfio, [vfio_virqfd on 6.1],
#      vfio_iommu_type1, vfio-pci-core, vfio-pci (which binds the endpoint: /dev/vfio/N
#      appears), and on 6.12 igb, igbvf and aer_inject (for the SR-IOV run);
#   3. builds a root on tmpfs from the 9p shares: /usr, /etc, the Swift runtime and the
#      project folder read-only at their own paths, the results folder read-write at
#      /results, and each extra share (tags x0, x1, ... at the paths in e2e_shares);
#      bin, lib, lib64, sbin as symlinks into usr (merged /usr); fresh proc, sys, dev
#      (+ pts, shm), tmp, run;
#   4. prints `HOST-READY <uptime>` and runs `e2e_run` (an absolute path, from the
#      kernel command line) chrooted, with cwd the project folder and E2E_CONFIG,
#      E2E_INNER_QEMU from e2e_config, e2e_inner_qemu; its exit status goes to
#      /results/exit-status, then the host powers off.
set -euo pipefail

flavour=${1:-6.1}
log_name=build-host
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${QMP_BROKER_CACHE:-/var/cache/qmp-broker}
# shellcheck source=lib/debian-boot.sh
. "$here/lib/debian-boot.sh"

resolve_packages   # kernel_pkg/kernel_ver (6.1) and busybox_ver, from the machine's apt
case "$flavour" in
    6.1)  modules=(9p 9pnet_virtio virtio_pci irqbypass vfio vfio_virqfd vfio_iommu_type1 vfio-pci-core vfio-pci) ;;
    6.12) kernel_pkg=linux-image-6.12.95+deb12-amd64-unsigned kernel_ver=6.12.95-1~bpo12+1
          modules=(9p 9pnet_virtio virtio_pci irqbypass vfio vfio_iommu_type1 vfio-pci-core vfio-pci igb igbvf aer_inject) ;;
    6.12-iommufd)
          kernel_pkg=linux-image-6.12.95+deb12-amd64-unsigned kernel_ver=6.12.95-1~bpo12+1
          iommufd_modules=$("$here/build-iommufd-modules.sh")
          modules=(9p 9pnet_virtio virtio_pci irqbypass iommufd vfio vfio_iommu_type1 vfio-pci-core vfio-pci igb igbvf aer_inject) ;;
    *) die "unknown kernel $flavour (6.1 or 6.12)" ;;
esac
script_hash=$(cat "${BASH_SOURCE[0]}" "$here/lib/debian-boot.sh" | sha256sum | cut -d' ' -f1)
stamp="$kernel_pkg=$kernel_ver busybox-static=$busybox_ver script=$script_hash"
outdir=$cache_root/host-$kernel_ver
if [ "$flavour" = 6.12-iommufd ]; then
    stamp="$stamp iommufd=$(sha256sum "$iommufd_modules"/*.ko | sha256sum | cut -d' ' -f1)"
    outdir=$outdir-iommufd
fi

if [ -s "$outdir/initramfs.gz" ] && [ -s "$outdir/vmlinux" ] && [ "$(cat "$outdir/stamp" 2>/dev/null)" = "$stamp" ]; then
    log "up to date in $outdir ($kernel_pkg $kernel_ver)"
    echo "$outdir"
    exit 0
fi

debdir=$cache_root/debs
mkdir -p "$debdir" "$outdir"
if [ "$flavour" != 6.1 ]; then
    # shellcheck source=lib/backports.sh
    . "$here/lib/backports.sh"
    [ -s "$(debfile "$kernel_pkg" "$kernel_ver")" ] || { backports_update; backports_download "$debdir" "$kernel_pkg=$kernel_ver"; }
else
    fetch_deb "$kernel_pkg" "$kernel_ver" 'linux-image-6.1.0-*.deb'
fi
fetch_deb busybox-static "$busybox_ver" 'busybox-static_*.deb'
# 6.12's modules are .ko.xz, which busybox depmod decompresses one by one (minutes for
# all of them under load): keep only the folders the initramfs draws from.
eval "$(declare -f unpack_packages | sed '1s/^unpack_packages/unpack_all_packages/')"
unpack_packages() { # WORK
    if [ "$flavour" = 6.1 ]; then unpack_all_packages "$@"; return; fi
    log "unpacking"
    dpkg-deb --fsys-tarfile "$(debfile "$kernel_pkg" "$kernel_ver")" |
        tar -x -C "$1" --transform 's|^\./|kernel/|' --wildcards './boot/vmlinuz-*' './lib/modules/*/modules.*' \
            './lib/modules/*/kernel/fs/9p' './lib/modules/*/kernel/fs/netfs' './lib/modules/*/kernel/net/9p' \
            './lib/modules/*/kernel/virt' './lib/modules/*/kernel/drivers/vfio' './lib/modules/*/kernel/drivers/pci' \
            './lib/modules/*/kernel/drivers/dca' './lib/modules/*/kernel/drivers/i2c/algos' \
            './lib/modules/*/kernel/drivers/net/ethernet/intel/igb' './lib/modules/*/kernel/drivers/net/ethernet/intel/igbvf'
    dpkg-deb -x "$(debfile busybox-static "$busybox_ver")" "$1/busybox"
    busybox=$1/busybox/bin/busybox
    kver=$(basename "$(ls -d "$1"/kernel/lib/modules/*)")
    moddir=$1/kernel/lib/modules/$kver
    if [ "$flavour" = 6.12-iommufd ]; then   # the rebuilt modules replace Debian's
        rm -f "$moddir"/kernel/drivers/vfio/vfio.ko.xz "$moddir"/kernel/drivers/vfio/vfio_iommu_type1.ko.xz \
            "$moddir"/kernel/drivers/vfio/pci/vfio-pci-core.ko.xz "$moddir"/kernel/drivers/vfio/pci/vfio-pci.ko.xz
        mkdir -p "$moddir/kernel/drivers/iommu/iommufd"
        cp "$iommufd_modules/iommufd.ko" "$moddir/kernel/drivers/iommu/iommufd/"
        cp "$iommufd_modules/vfio.ko" "$iommufd_modules/vfio_iommu_type1.ko" "$moddir/kernel/drivers/vfio/"
        cp "$iommufd_modules/vfio-pci-core.ko" "$iommufd_modules/vfio-pci.ko" "$moddir/kernel/drivers/vfio/pci/"
    fi
    "$busybox" depmod -b "$1/kernel" "$kver"
}
initramfs_start "${modules[@]}"

# PID 1 of the nested host. Settings come from the kernel command line as environment
# variables: e2e_repo, e2e_swift, e2e_run, e2e_vfio, e2e_shares, e2e_config,
# e2e_inner_qemu. Before the vfio modules load, the endpoints are set aside for vfio-pci.
# shellcheck disable=SC2016 # lines of /init, expanded there
{ init_prelude; cat <<'EOF_VFIO'; init_load_modules; cat <<'EOF_INIT'; } >"$root/init"
for dev in $(echo "${e2e_vfio:-}" | tr ',' ' '); do
    [ -e "/sys/bus/pci/devices/$dev/driver" ] && echo "$dev" >"/sys/bus/pci/devices/$dev/driver/unbind"
    echo vfio-pci >"/sys/bus/pci/devices/$dev/driver_override"
done
EOF_VFIO
say() { echo "init: $*"; }
say "kernel $(uname -r)"
for dev in $(echo "${e2e_vfio:-}" | tr ',' ' '); do
    driver=$(readlink "/sys/bus/pci/devices/$dev/driver" 2>/dev/null) || driver=none
    say "$dev driver ${driver##*/}, iommu group $(basename "$(readlink "/sys/bus/pci/devices/$dev/iommu_group")")"
done

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
index=0
for path in $(echo "${e2e_shares:-}" | tr ',' ' '); do
    share "x$index" "$path" ro,msize=512000,cache=loose
    index=$((index + 1))
done
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
    E2E_REPO="$e2e_repo" E2E_CONFIG="${e2e_config:-}" E2E_INNER_QEMU="${e2e_inner_qemu:-}" \
    /bin/sh -c 'cd "$E2E_REPO" && exec "$0"' "$e2e_run"
status=$?
echo "$status" >$new/results/exit-status
say "scenario exited with status $status"
sync
poweroff -f
EOF_INIT
chmod 755 "$root/init"

# The uncompressed ELF kernel for PVH boot (saves seconds of xz under TCG), extracted
# like linux/scripts/extract-vmlinux: the xz stream starts at its magic.
# 6.1's is xz, 6.12's zstd.
vmlinuz=$work/kernel/boot/vmlinuz-$kver
if offset=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1) && [ -n "$offset" ]; then
    tail -c +$((offset + 1)) "$vmlinuz" | xz -dc >"$outdir/vmlinux.tmp" 2>/dev/null || true
elif offset=$(LC_ALL=C grep -obUaP '\x28\xB5\x2F\xFD' "$vmlinuz" | head -1 | cut -d: -f1) && [ -n "$offset" ]; then
    tail -c +$((offset + 1)) "$vmlinuz" | zstd -dcq >"$outdir/vmlinux.tmp" 2>/dev/null || true
else
    die "no xz or zstd stream in $vmlinuz"
fi
[ "$(head -c 4 "$outdir/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || die "could not extract vmlinux from $vmlinuz"
initramfs_pack "$root" "$outdir/initramfs.gz.tmp"
mv "$outdir/vmlinux.tmp" "$outdir/vmlinux"
mv "$outdir/initramfs.gz.tmp" "$outdir/initramfs.gz"
echo "$kver" >"$outdir/kernel-release"
echo "$stamp" >"$outdir/stamp"
log "built in $outdir ($kver): vmlinux $(size "$outdir/vmlinux"), initramfs.gz $(size "$outdir/initramfs.gz")"
echo "$outdir"
