#!/usr/bin/env bash
# Debian's 6.12 kernels have `# CONFIG_IOMMUFD is not set` (SPEC 11), so QEMU's iommufd
# backend cannot run on a stock Debian host. This rebuilds the five modules it needs from
# Debian's own linux-source-6.12, against linux-headers of the same version, with the
# kernel image unchanged: iommufd, vfio (with VFIO_DEVICE_CDEV), vfio_iommu_type1,
# vfio-pci-core, vfio-pci. Prints the output folder.
#
#   scripts/build-iommufd-modules.sh   -> $QMP_BROKER_CACHE/iommufd-6.12.95-1~bpo12+1/
#                                         iommufd.ko vfio.ko vfio_iommu_type1.ko
#                                         vfio-pci-core.ko vfio-pci.ko stamp
#
# The .debs (linux-source-6.12 ~150 MB, linux-headers-*-amd64 and -common,
# linux-kbuild) come from bookworm-backports through the side apt list
# (scripts/lib/backports.sh), into $QMP_BROKER_CACHE/debs. Needs gcc-12 and make. Only
# drivers/vfio, drivers/iommu and lib/interval_tree.c are unpacked from the source.
# What differs from a kernel build with CONFIG_IOMMUFD=m:
#   - the headers' autoconf.h and auto.conf get CONFIG_IOMMUFD=m and
#     CONFIG_VFIO_DEVICE_CDEV=y;
#   - lib/interval_tree.c's span iterator (CONFIG_INTERVAL_TREE_SPAN_ITER, which
#     IOMMUFD selects and the kernel image lacks) is compiled into iommufd.ko;
#   - no BTF (the headers' vmlinux is left out: no pahole needed).
set -euo pipefail
log_name=build-iommufd-modules
log() { echo "$log_name: $*" >&2; }
die() { log "error: $*"; exit 1; }
cache_root=${QMP_BROKER_CACHE:-/var/cache/qmp-broker}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/backports.sh
. "$here/lib/backports.sh"

version=6.12.95-1~bpo12+1 abi=6.12.95+deb12
packages=("linux-source-6.12=$version" "linux-headers-$abi-amd64=$version" "linux-headers-$abi-common=$version"
          "linux-kbuild-$abi=$version")
outdir=$cache_root/iommufd-$version
stamp="${packages[*]} script=$(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)"
if [ -s "$outdir/vfio-pci.ko" ] && [ "$(cat "$outdir/stamp" 2>/dev/null)" = "$stamp" ]; then
    log "up to date in $outdir"
    echo "$outdir"
    exit 0
fi
for tool in gcc-12 make; do command -v "$tool" >/dev/null || die "$tool not found"; done
debs=$cache_root/debs
deb() { ls "$debs/${1}_${version}_"*.deb 2>/dev/null | head -1; }
missing=()
for spec in "${packages[@]}"; do [ -n "$(deb "${spec%%=*}")" ] || missing+=("$spec"); done
if [ ${#missing[@]} -gt 0 ]; then backports_update; backports_download "$debs" "${missing[@]}"; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/$log_name.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$SECONDS
for name in "linux-headers-$abi-amd64" "linux-headers-$abi-common" "linux-kbuild-$abi"; do
    dpkg-deb -x "$(deb "$name")" "$work/root"
done
log "unpacking drivers/vfio, drivers/iommu and lib/interval_tree.c from linux-source-6.12"
dpkg-deb --fsys-tarfile "$(deb linux-source-6.12)" | tar -xO ./usr/src/linux-source-6.12.tar.xz | xz -dc |
    tar -x -C "$work" --wildcards 'linux-source-6.12/drivers/vfio/*' 'linux-source-6.12/drivers/iommu/*' \
        'linux-source-6.12/lib/interval_tree.c'
src=$work/linux-source-6.12

# The headers as if the kernel had CONFIG_IOMMUFD=m and CONFIG_VFIO_DEVICE_CDEV=y.
headers=$work/root/usr/src/headers
cp -a "$work/root/usr/src/linux-headers-$abi-amd64" "$headers"
echo "include $work/root/usr/src/linux-headers-$abi-common/Makefile" >"$headers/Makefile"
rm -f "$headers/vmlinux"
printf '#define CONFIG_IOMMUFD_MODULE 1\n#define CONFIG_VFIO_DEVICE_CDEV 1\n' >>"$headers/include/generated/autoconf.h"
printf 'CONFIG_IOMMUFD=m\nCONFIG_VFIO_DEVICE_CDEV=y\n' >>"$headers/include/config/auto.conf"
sed -i 's/^# CONFIG_IOMMUFD is not set$/CONFIG_IOMMUFD=m\nCONFIG_VFIO_DEVICE_CDEV=y/' "$headers/.config"

mkdir -p "$work/build"
cp -a "$src/drivers/iommu/iommufd" "$work/build/iommufd"
cp -a "$src/drivers/vfio" "$work/build/vfio"
cp "$src/drivers/iommu/iommu-priv.h" "$work/build/"
{ printf '#include <linux/interval_tree.h>\n#include <linux/compiler.h>\n'
  printf '/* lib/interval_tree.c, CONFIG_INTERVAL_TREE_SPAN_ITER: not in the kernel image. */\n'
  sed -n '/^#ifdef CONFIG_INTERVAL_TREE_SPAN_ITER/,/^#endif/p' "$src/lib/interval_tree.c" | sed '1d;$d' | grep -v EXPORT_SYMBOL
} >"$work/build/iommufd/span_iter.c"
echo 'iommufd-y += span_iter.o' >>"$work/build/iommufd/Makefile"

log "building iommufd.ko"
make -C "$headers" M="$work/build/iommufd" -j2 modules >"$work/iommufd.log" 2>&1 || { tail -20 "$work/iommufd.log" >&2; die "iommufd build failed"; }
log "building vfio.ko, vfio_iommu_type1.ko, vfio-pci-core.ko, vfio-pci.ko"
make -C "$headers" M="$work/build/vfio" KBUILD_EXTRA_SYMBOLS="$work/build/iommufd/Module.symvers" -j2 modules \
    >"$work/vfio.log" 2>&1 || { tail -20 "$work/vfio.log" >&2; die "vfio build failed"; }

rm -rf "$outdir.part"
mkdir -p "$outdir.part"
for module in iommufd/iommufd.ko vfio/vfio.ko vfio/vfio_iommu_type1.ko vfio/pci/vfio-pci-core.ko vfio/pci/vfio-pci.ko; do
    strip --strip-debug -o "$outdir.part/$(basename "$module")" "$work/build/$module"
done
echo "$stamp" >"$outdir.part/stamp"
rm -rf "$outdir"
mv "$outdir.part" "$outdir"
log "built in $outdir in $((SECONDS - started)) s"
echo "$outdir"
