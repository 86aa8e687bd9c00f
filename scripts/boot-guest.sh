#!/usr/bin/env bash
# Boots the e2e guest (scripts/build-guest.sh) under QEMU 7.2 TCG with one
# AER-capable PCIe device behind a root port, as the end-to-end tests need it:
#
#   scripts/boot-guest.sh [options] QMP_SOCKET SERIAL_LOG [-- EXTRA_QEMU_ARGS...]
#
#   QMP_SOCKET        unix socket QEMU listens on for QMP (server, no wait)
#   SERIAL_LOG        file that receives everything the guest prints on ttyS0
#   --console PATH    also serve ttyS0 on unix socket PATH (server, no wait), so
#                     a test can type into the guest shell (e.g. "reboot -f\n");
#                     output is still logged to SERIAL_LOG when nobody is connected
#   --guest DIR       guest build directory (default: .cache/guest; built if missing)
#   --append ARGS     extra kernel command line arguments
#   --kernel NAME     vmlinux (default when built: PVH boot of the uncompressed
#                     kernel, ~3 s to GUEST-READY) or vmlinuz (the bzImage as
#                     shipped; its xz decompression adds ~4.5 s per boot under TCG)
#   --nic             add a second root port with an e1000e (see topology)
#   --accel NAME      QEMU accelerator (default: tcg, as measured in Tests/E2E/README.md)
#   --dry-run         print the command line and exit
#
# Guest PCI topology (guest-visible addresses):
#   00:1c.0  pcie-root-port  id=rp0   (AER, native hotplug: see the -global below)
#   01:00.0  virtio-rng-pci  id=dev0  (aer=on: reports AER errors itself)
#   with --nic:
#   00:1d.0  pcie-root-port  id=rp1
#   02:00.0  e1000e          id=nic0  (cannot report AER in QEMU 7.2: inject at rp1)
#
# The QEMU command line is printed on stderr, then this script execs QEMU, so
# its PID is QEMU's. The guest prints `GUEST-READY` on ttyS0 when it is up.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
guest=$repo/.cache/guest
console=""
append=""
accel=tcg
kernel=""
nic=false
dry_run=false

usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --console) console=$2; shift 2 ;;
        --guest) guest=$2; shift 2 ;;
        --append) append=$2; shift 2 ;;
        --accel) accel=$2; shift 2 ;;
        --kernel) kernel=$2; shift 2 ;;
        --nic) nic=true; shift ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) usage ;;
        --) break ;;
        -*) echo "boot-guest: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -ge 2 ] || usage
qmp_socket=$1 serial_log=$2
shift 2
[ "${1:-}" != "--" ] || shift

if [ ! -s "$guest/vmlinuz" ] || [ ! -s "$guest/initramfs.gz" ]; then
    "$repo/scripts/build-guest.sh" "$guest"
fi

if [ -z "$kernel" ]; then
    kernel=vmlinuz; [ ! -s "$guest/vmlinux" ] || kernel=vmlinux
fi
case "$kernel" in vmlinux|vmlinuz) ;; *) echo "boot-guest: --kernel must be vmlinux or vmlinuz" >&2; exit 2 ;; esac
[ -s "$guest/$kernel" ] || { echo "boot-guest: $guest/$kernel missing (run scripts/build-guest.sh)" >&2; exit 1; }

# shellcheck disable=SC2054 # commas belong to QEMU option values
devices=(
    -device pcie-root-port,id=rp0,bus=pcie.0,chassis=1,addr=1c.0
    -device virtio-rng-pci,aer=on,id=dev0,bus=rp0
)
if $nic; then
    # The NIC needs a backend or QEMU warns; an isolated user network (restrict=on).
    # shellcheck disable=SC2054
    devices+=(
        -device pcie-root-port,id=rp1,bus=pcie.0,chassis=2,addr=1d.0
        -netdev user,id=net0,restrict=on
        -device e1000e,id=nic0,bus=rp1,netdev=net0
    )
fi

# QEMU option values escape a comma by doubling it.
qemu_path() { printf '%s' "${1//,/,,}"; }

# ttyS0 goes to a socket chardev with a logfile (everything the guest prints is
# kept even with no client attached), or straight to the file.
if [ -n "$console" ]; then
    serial=(-chardev "socket,id=ttyS0,path=$(qemu_path "$console"),server=on,wait=off,logfile=$(qemu_path "$serial_log"),logappend=off"
            -serial chardev:ttyS0)
else
    serial=(-serial "file:$serial_log")   # -serial takes the rest verbatim
fi

cmd=(
    qemu-system-x86_64
    -M q35 -accel "$accel" -smp 1 -m 512
    -nodefaults -no-user-config -display none
    -kernel "$guest/$kernel" -initrd "$guest/initramfs.gz"   # taken verbatim
    -append "console=ttyS0 loglevel=8${append:+ $append}"
    "${serial[@]}"
    -qmp "unix:$(qemu_path "$qmp_socket"),server=on,wait=off"
    # Native PCIe hotplug on the root port; without it Linux's link reset
    # "fails" (-25) and fatal-error recovery fails in the guest (SPEC 9).
    -global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off
    "${devices[@]}"
    "$@"
)
printf 'boot-guest:' >&2
printf ' %q' "${cmd[@]}" >&2
printf '\n' >&2
$dry_run || exec "${cmd[@]}"
