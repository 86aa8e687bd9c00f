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

log() { echo "build-guest: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in apt-get apt-cache dpkg-deb gzip sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

# --- Resolve the exact package versions (apt-get update only if needed) ------
apt_update() {
    [ "$(id -u)" -eq 0 ] || die "apt lists are missing or stale; run 'apt-get update' as root"
    log "apt-get update"
    apt-get update -qq
}
# Sets kernel_pkg (linux-image-amd64's dependency), kernel_ver and busybox_ver.
resolve() {
    kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-6\.1\.0-[0-9]+-amd64$/ { print $2; exit }')
    [ -n "$kernel_pkg" ] || return 1
    local versions
    versions=$(apt-cache policy "$kernel_pkg" busybox-static 2>/dev/null |
        awk '/^[^ ]/ { pkg = $1 } /Candidate:/ && $2 != "(none)" { print pkg, $2 }')
    kernel_ver=$(awk -v p="$kernel_pkg:" '$1 == p { print $2 }' <<<"$versions")
    busybox_ver=$(awk '$1 == "busybox-static:" { print $2 }' <<<"$versions")
    [ -n "$kernel_ver" ] && [ -n "$busybox_ver" ]
}
resolve || { apt_update && resolve; } || die "cannot resolve linux-image-amd64 / busybox-static with apt-cache"
script_hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
stamp="$kernel_pkg=$kernel_ver busybox-static=$busybox_ver script=$script_hash"

mkdir -p "$outdir/debs"
outdir=$(cd "$outdir" && pwd)
if [ -s "$outdir/vmlinuz" ] && [ -s "$outdir/initramfs.gz" ] && { [ -s "$outdir/vmlinux" ] || ! command -v xz >/dev/null; } &&
   [ "$(cat "$outdir/stamp" 2>/dev/null)" = "$stamp" ]; then
    log "up to date in $outdir ($kernel_pkg $kernel_ver, busybox-static $busybox_ver)"
    exit 0
fi

# --- Download the two .debs (kept in OUTDIR/debs, old versions dropped) ------
debfile() { echo "$outdir/debs/${1}_${2//:/%3a}_amd64.deb"; }
download() { # package version
    # As root, apt drops to the _apt user, which cannot write into OUTDIR.
    local sandbox=()
    [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
    (cd "$outdir/debs" && apt-get download -q "${sandbox[@]}" "$1=$2" >/dev/null)
}
fetch_deb() { # package version glob-of-older-versions-to-drop
    [ -s "$(debfile "$1" "$2")" ] && return 0
    # shellcheck disable=SC2086 # $3 is a glob on purpose
    rm -f "$outdir/debs/"$3
    log "downloading $1 $2"
    download "$1" "$2" || { apt_update && download "$1" "$2"; } || die "apt-get download $1=$2 failed"
    [ -s "$(debfile "$1" "$2")" ] || die "expected $(debfile "$1" "$2") after download"
}
fetch_deb "$kernel_pkg" "$kernel_ver" 'linux-image-*.deb'
fetch_deb busybox-static "$busybox_ver" 'busybox-static_*.deb'

# --- Unpack into a temp dir ---------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/build-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "unpacking"
dpkg-deb -x "$(debfile "$kernel_pkg" "$kernel_ver")" "$work/kernel"
dpkg-deb -x "$(debfile busybox-static "$busybox_ver")" "$work/busybox"
busybox=$work/busybox/bin/busybox
[ -x "$busybox" ] || die "busybox-static has no bin/busybox"
kver=$(basename "$(ls -d "$work"/kernel/lib/modules/*)")
moddir=$work/kernel/lib/modules/$kver

# --- Kernel modules: resolve dependencies, load order deps-first -------------
# The .deb has no modules.dep (depmod runs at install time): make one with
# busybox depmod. Entries are paths relative to the module dir; a module's
# file name uses '-' or '_' interchangeably (virtio_rng -> virtio-rng.ko).
"$busybox" depmod -b "$work/kernel" "$kver"
declare -A seen=()
load_order=()
add_module() { # path relative to $moddir
    [ -n "${seen[$1]:-}" ] && return 0
    seen[$1]=1
    local deps dep
    read -ra deps <<<"$(awk -v m="$1:" '$1 == m { $1 = ""; print; exit }' "$moddir/modules.dep")"
    for dep in "${deps[@]}"; do
        add_module "$dep"
    done
    load_order+=("$1")
}
# Path of module NAME in a list file (modules.dep or modules.builtin), or nothing.
module_path() { # name file
    awk -F: -v re="/${1//[-_]/[-_]}[.]ko([.]xz)?\$" '$1 ~ re { print $1; exit }' "$2"
}
for name in "${modules[@]}"; do
    if [ -n "$(module_path "$name" "$moddir/modules.builtin")" ]; then
        log "$name is built into the kernel"; continue
    fi
    path=$(module_path "$name" "$moddir/modules.dep")
    [ -n "$path" ] || die "module $name not found in $kver"
    add_module "$path"
done

# --- Assemble the initramfs tree -----------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc} "$root/lib/modules/$kver"
cp "$busybox" "$root/bin/busybox"
# One symlink per applet (sh, mount, insmod, reboot, ...), as `busybox --install -s` would.
"$busybox" --list-full | while read -r applet; do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
: >"$root/etc/modules"
for path in "${load_order[@]}"; do
    mkdir -p "$root/lib/modules/$kver/$(dirname "$path")"
    case "$path" in
        *.ko.xz) "$busybox" xz -dc "$moddir/$path" >"$root/lib/modules/$kver/${path%.xz}"; path=${path%.xz} ;;
        *)       cp "$moddir/$path" "$root/lib/modules/$kver/$path" ;;
    esac
    echo "/lib/modules/$kver/$path" >>"$root/etc/modules"
done
grep -F -f <(sed 's|^/lib/modules/[^/]*/||; s/$/:/' "$root/etc/modules") "$moddir/modules.dep" >"$root/lib/modules/$kver/modules.dep" || true
log "modules: $(tr '\n' ' ' <"$root/etc/modules")"

cat >"$root/init" <<'EOF'
#!/bin/sh
# PID 1 of the e2e guest. The kernel starts it with no usable stdio until
# devtmpfs is mounted, so mount /dev first and then attach to the console.
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
dmesg -n 8                      # every kernel message (AER lines included) on ttyS0
while read -r module; do
    insmod "$module" || echo "init: insmod $module failed"
done </etc/modules
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

# --- Pack: newc cpio, owned by root, gzip (the kernel has RD_GZIP) -------------
log "packing initramfs"
if command -v cpio >/dev/null; then cpio=(cpio --quiet -o -H newc -R 0:0); else cpio=("$busybox" cpio -o -H newc -R 0:0); fi
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | "${cpio[@]}") | gzip -9 >"$outdir/initramfs.gz.tmp"
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
size() { du -h --apparent-size "$1" | cut -f1; }
log "built in $outdir ($kver): vmlinuz $(size "$outdir/vmlinuz"), initramfs.gz $(size "$outdir/initramfs.gz")$([ ! -s "$outdir/vmlinux" ] || echo ", vmlinux $(size "$outdir/vmlinux")")"
