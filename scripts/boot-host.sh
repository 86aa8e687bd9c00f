#!/usr/bin/env bash
# Boots the nested host of the host end-to-end test (scripts/build-host.sh) under
# QEMU TCG exactly as SPEC sections 10 and 11 measured it: q35 with an emulated
# intel-iommu, a root port rp1 and an AER-capable virtio-net endpoint behind it,
# which the host's kernel binds to vfio-pci (or an igb PF with SR-IOV, --endpoint igb).
#
#   scripts/boot-host.sh [options] QMP_SOCKET CONSOLE_LOG RESULTS_DIR RUN [-- EXTRA_QEMU_ARGS...]
#
#   QMP_SOCKET        unix socket the outer QEMU listens on for QMP (server, no wait):
#                     errors are injected into the host through it (HMP pcie_aer_inject_error)
#   CONSOLE_LOG       file that receives the host's ttyS0 (kernel messages, /init)
#   RESULTS_DIR       shared read-write over 9p, mounted at /results inside
#   RUN               absolute path of the program /init runs inside (chrooted, cwd the
#                     project folder); its exit status lands in RESULTS_DIR/exit-status
#   --control PATH    serve the host's ttyS1 on unix socket PATH (server, no wait): a
#                     line channel between RUN and a driver outside
#   --kernel 6.1|6.12 the host's kernel (default 6.1; scripts/build-host.sh builds it);
#                     KVER-systemd boots the same host with systemd as PID 1
#                     (scripts/build-host-systemd.sh, rdinit=/init-systemd)
#   --qemu PATH       the outer emulator (default qemu-system-x86_64, Debian 12's 7.2);
#                     correctable errors reach the host's kernel only from QEMU >= 8.1
#   --endpoint KIND   virtio (default: virtio-net-pci nic0, bound to vfio-pci at boot) or
#                     igb (an SR-IOV igb PF pf0, left to the host's igb driver)
#   --share PATH      also share PATH read-only at its own path (repeatable)
#   --config NAME     passed to RUN as E2E_CONFIG
#   --inner-qemu PATH passed to RUN as E2E_INNER_QEMU
#   --dry-run         print the command line and exit
#
# Host PCI topology:
#   00:01.0  pcie-root-port  id=rp1   (AER; native hotplug, see the -global below)
#   01:00.0  virtio-net-pci  id=nic0  (aer=on, modern only; has FLR) -> vfio-pci
#            or igb          id=pf0   (8 VFs at 01:10.0, 01:10.2, ...; AER) -> igb
#   00:02.0.. virtio-9p-pci  tags usr, etc, swift, repo, results
# Read-only shares at their own paths: /usr, /etc, the Swift runtime the broker links
# (<toolchain>/usr/lib/swift/linux, found from `swift` on PATH, or $SWIFT_RUNTIME) and
# this project folder (for .build/debug/qmp-broker
# and Tests/HostE2E).
#
# The QEMU command line is printed on stderr, then this script execs QEMU, so its
# PID is QEMU's. The host prints `HOST-READY <uptime>` on ttyS0 before running RUN and
# powers off when RUN exits (QEMU then exits).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The Swift runtime the debug broker links (RUNPATH <toolchain>/usr/lib/swift/linux).
swift_runtime=${SWIFT_RUNTIME:-}
if [ -z "$swift_runtime" ] && command -v swift >/dev/null; then
    swift_runtime=$(cd "$(dirname "$(readlink -f "$(command -v swift)")")/../lib/swift/linux" 2>/dev/null && pwd) || true
fi
control=""
dry_run=false
kernel=6.1
qemu=qemu-system-x86_64
endpoint=virtio
extra_shares=()
config=""
inner_qemu=""

usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --control) control=$2; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        --kernel) kernel=$2; shift 2 ;;
        --qemu) qemu=$2; shift 2 ;;
        --endpoint) endpoint=$2; shift 2 ;;
        --share) extra_shares+=("$2"); shift 2 ;;
        --config) config=$2; shift 2 ;;
        --inner-qemu) inner_qemu=$2; shift 2 ;;
        -h|--help) usage ;;
        --) break ;;
        -*) echo "boot-host: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -ge 4 ] || usage
qmp_socket=$1 console_log=$2 results=$3 run=$4
shift 4
[ "${1:-}" != "--" ] || shift

rdinit=""
case "$kernel" in
    *-systemd) host=$("$repo/scripts/build-host-systemd.sh" "${kernel%-systemd}") rdinit=" rdinit=/init-systemd systemd.show_status=false" ;;
    *) host=$("$repo/scripts/build-host.sh" "$kernel") ;;   # cached: about a second
esac
case "$endpoint" in
    virtio) endpoint_args=(-device virtio-net-pci,id=nic0,bus=rp1,aer=on,disable-legacy=on,netdev=net0); vfio=0000:01:00.0 ;;
    igb)    endpoint_args=(-device igb,id=pf0,bus=rp1,netdev=net0); vfio="" ;;
    *) echo "boot-host: unknown endpoint $endpoint (virtio or igb)" >&2; exit 2 ;;
esac
mkdir -p "$results"
[ -d "$swift_runtime" ] || { echo "boot-host: no Swift runtime folder (set SWIFT_RUNTIME)" >&2; exit 1; }

# QEMU option values escape a comma by doubling it.
qemu_path() { printf '%s' "${1//,/,,}"; }

shares=()
index=0
share() { # tag path ro|rw
    local readonly=""
    [ "$3" = rw ] || readonly=",readonly=on"
    shares+=(-fsdev "local,id=fs$index,path=$(qemu_path "$2"),security_model=none$readonly"
             -device "virtio-9p-pci,fsdev=fs$index,mount_tag=$1,bus=pcie.0,addr=$((index + 2)).0")
    index=$((index + 1))
}
share usr /usr ro
share etc /etc ro
share swift "$swift_runtime" ro
share repo "$repo" ro
share results "$(cd "$results" && pwd)" rw
extra_index=0
for path in "${extra_shares[@]}"; do
    shares+=(-fsdev "local,id=x$extra_index,path=$(qemu_path "$path"),security_model=none,readonly=on"
             -device "virtio-9p-pci,fsdev=x$extra_index,mount_tag=x$extra_index,bus=pcie.0,addr=$((index + 2)).0")
    index=$((index + 1)) extra_index=$((extra_index + 1))
done

serial=(-serial "file:$console_log")
if [ -n "$control" ]; then
    serial+=(-chardev "socket,id=control,path=$(qemu_path "$control"),server=on,wait=off" -serial chardev:control)
fi

# shellcheck disable=SC2054 # commas belong to QEMU option values
cmd=(
    "$qemu"
    -M q35,accel=tcg,kernel-irqchip=split -m 2048 -smp 2
    -nodefaults -no-user-config -display none
    -device intel-iommu,intremap=on,caching-mode=on
    # Native PCIe hotplug on the root port (SPEC 9).
    -global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off
    -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=1.0
    -netdev user,id=net0,restrict=on
    "${endpoint_args[@]}"
    "${shares[@]}"
    -kernel "$host/vmlinux" -initrd "$host/initramfs.gz"   # PVH boot of the uncompressed kernel
    # no_timer_check: under load, nested TCG fails the IO-APIC timer check, and with
    # interrupt remapping on, 6.12 panics ("timer doesn't work through Interrupt-remapped IO-APIC").
    -append "console=ttyS0 loglevel=7 intel_iommu=on iommu=pt no_timer_check e2e_vfio=$vfio e2e_repo=$repo e2e_swift=$swift_runtime e2e_run=$run e2e_shares=$(IFS=,; echo "${extra_shares[*]}") e2e_config=$config e2e_inner_qemu=$inner_qemu$rdinit"
    "${serial[@]}"
    -qmp "unix:$(qemu_path "$qmp_socket"),server=on,wait=off"
    "$@"
)
printf 'boot-host:' >&2
printf ' %q' "${cmd[@]}" >&2
printf '\n' >&2
$dry_run || exec "${cmd[@]}"
