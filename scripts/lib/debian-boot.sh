# Shared by scripts/build-guest.sh and scripts/build-host.sh (sourced, not run):
# resolving and downloading Debian's kernel and busybox-static, unpacking them,
# and packing a busybox initramfs with a chosen set of kernel modules.
#
# The caller sets `log_name` (prefix of its messages) before sourcing, and
# `set -euo pipefail`. Needs apt-get/apt-cache, dpkg-deb, gzip, sha256sum.

log() { echo "$log_name: $*" >&2; }
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
resolve_once() {
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
resolve_packages() {
    resolve_once || { apt_update && resolve_once; } || die "cannot resolve linux-image-amd64 / busybox-static with apt-cache"
}

# --- Download the two .debs into DEBDIR (old versions dropped) ----------------
debfile() { echo "$debdir/${1}_${2//:/%3a}_amd64.deb"; }
download() { # package version
    # As root, apt drops to the _apt user, which cannot write into DEBDIR.
    local sandbox=()
    [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
    (cd "$debdir" && apt-get download -q "${sandbox[@]}" "$1=$2" >/dev/null)
}
fetch_deb() { # package version glob-of-older-versions-to-drop
    [ -s "$(debfile "$1" "$2")" ] && return 0
    # shellcheck disable=SC2086 # $3 is a glob on purpose
    rm -f "$debdir/"$3
    log "downloading $1 $2"
    download "$1" "$2" || { apt_update && download "$1" "$2"; } || die "apt-get download $1=$2 failed"
    [ -s "$(debfile "$1" "$2")" ] || die "expected $(debfile "$1" "$2") after download"
}
fetch_packages() { # DEBDIR; needs resolve_packages first
    debdir=$1
    mkdir -p "$debdir"
    fetch_deb "$kernel_pkg" "$kernel_ver" 'linux-image-*.deb'
    fetch_deb busybox-static "$busybox_ver" 'busybox-static_*.deb'
}

# --- Unpack into WORK: sets kver, moddir, busybox ------------------------------
unpack_packages() { # WORK
    log "unpacking"
    dpkg-deb -x "$(debfile "$kernel_pkg" "$kernel_ver")" "$1/kernel"
    dpkg-deb -x "$(debfile busybox-static "$busybox_ver")" "$1/busybox"
    busybox=$1/busybox/bin/busybox
    [ -x "$busybox" ] || die "busybox-static has no bin/busybox"
    kver=$(basename "$(ls -d "$1"/kernel/lib/modules/*)")
    moddir=$1/kernel/lib/modules/$kver
    # The .deb has no modules.dep (depmod runs at install time): make one with
    # busybox depmod. Entries are paths relative to the module dir.
    "$busybox" depmod -b "$1/kernel" "$kver"
}

# --- Initramfs tree: busybox with its applet links, then modules --------------
initramfs_busybox() { # ROOT
    mkdir -p "$1"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc}
    cp "$busybox" "$1/bin/busybox"
    # One symlink per applet (sh, mount, insmod, reboot, ...), as `busybox --install -s` would.
    "$busybox" --list-full | while read -r applet; do
        [ -e "$1/$applet" ] || ln -s /bin/busybox "$1/$applet"
    done
}

# Path of module NAME in a list file (modules.dep or modules.builtin), or nothing.
# A module's file name uses '-' or '_' interchangeably (virtio_rng -> virtio-rng.ko).
module_path() { # name file
    awk -F: -v re="/${1//[-_]/[-_]}[.]ko([.]xz)?\$" '$1 ~ re { print $1; exit }' "$2"
}
# Copies the named modules and their dependencies into ROOT and writes their
# load order (dependencies first, then the names in the order given) to
# ROOT/etc/modules, one absolute path a line, for /init to insmod.
initramfs_modules() { # ROOT NAME...
    local root=$1 name path
    shift
    declare -A seen=()
    local load_order=()
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
    for name in "$@"; do
        if [ -n "$(module_path "$name" "$moddir/modules.builtin")" ]; then
            log "$name is built into the kernel"; continue
        fi
        path=$(module_path "$name" "$moddir/modules.dep")
        [ -n "$path" ] || die "module $name not found in $kver"
        add_module "$path"
    done
    mkdir -p "$root/lib/modules/$kver"
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
}

# --- The usual start of an initramfs: a temp dir (removed on exit) with the packages
# unpacked, and ROOT holding busybox and the named modules: sets work and root.
initramfs_start() { # MODULE...
    work=$(mktemp -d "${TMPDIR:-/tmp}/$log_name.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    unpack_packages "$work"
    root=$work/root
    initramfs_busybox "$root"
    initramfs_modules "$root" "$@"
}

# The first lines of every /init: the kernel starts PID 1 with no usable stdio until
# devtmpfs is mounted, so mount /dev first and then attach to the console; then
# proc and sys, and every kernel message (AER lines included) on the console.
# init_load_modules loads /etc/modules. The caller appends the rest.
init_prelude() {
    cat <<'EOF'
#!/bin/sh
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
dmesg -n 8
EOF
}
init_load_modules() {
    cat <<'EOF'
while read -r module; do
    insmod "$module" || echo "init: insmod $module failed"
done </etc/modules
EOF
}

# --- Pack: newc cpio, owned by root, gzip (the kernel has RD_GZIP) -------------
initramfs_pack() { # ROOT OUTFILE
    log "packing initramfs"
    local cpio
    if command -v cpio >/dev/null; then cpio=(cpio --quiet -o -H newc -R 0:0); else cpio=("$busybox" cpio -o -H newc -R 0:0); fi
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | "${cpio[@]}") | gzip -9 >"$2"
}

size() { du -h --apparent-size "$1" | cut -f1; }
