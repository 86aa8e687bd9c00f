#!/usr/bin/env bash
# Installs what qmp-broker needs on Debian (idempotent): the C library it links,
# the QEMU it fronts in the demo and tests, the third-party QMP clients the
# compatibility tests drive, and the shells and promtool the install check loads
# the completions and alert rules with. Run as root (or with sudo available).
set -euo pipefail

apt_packages=(libjansson-dev linux-libc-dev pkg-config libsqlite3-dev qemu-system-x86 socat python3 python3-pip xz-utils cpio zsh fish
              systemtap-sdt-dev gcc)
# The Debian package and its check: dpkg-buildpackage with debhelper, lintian, and
# mmdebstrap for the bare bookworm root it is installed into (scripts/check-package.sh).
apt_packages+=(debhelper devscripts lintian mmdebstrap)
missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libvirt, for the end-to-end test beside it (Tests/Libvirt). Debian's packages start no
# service here (policy-rc.d, and PID 1 is not systemd): the test starts virtlogd and
# libvirtd itself. Without systemd as PID 1 the sysv flavour is taken, so apt does not pull
# in systemd-sysv and upgrade the running system's systemd libraries.
libvirt_packages=(libvirt-daemon-system libvirt-clients)
if [ -d /run/systemd/system ]; then libvirt_packages+=(libvirt-daemon-system-systemd); else libvirt_packages+=(libvirt-daemon-system-sysv); fi
missing=()
for package in "${libvirt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})) && ! { command -v libvirtd && command -v virsh; } >/dev/null; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import qemu.qmp' 2>/dev/null; then
    echo "setup: installing the qemu.qmp Python client"
    python3 -m pip install --quiet --disable-pip-version-check qemu.qmp 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages qemu.qmp
fi

# promtool checks contrib's alert rules, and the fleet test runs the Prometheus server
# itself. Debian ships both in the prometheus package, whose postinst would start a
# Prometheus service: only the two binaries are taken out of the .deb.
tools="$(cd "$(dirname "$0")/.." && pwd)/.cache/tools"
if { [ ! -x "$tools/promtool" ] && ! command -v promtool >/dev/null; } || [ ! -x "$tools/prometheus" ]; then
    echo "setup: fetching promtool and prometheus (Debian's prometheus package)"
    work=$(mktemp -d)
    (cd "$work" && apt-get download -qq prometheus 2>/dev/null) || { echo "setup: cannot download prometheus" >&2; exit 1; }
    mkdir -p "$tools"
    for binary in promtool prometheus; do
        dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -xO ./usr/bin/$binary > "$tools/$binary.part"
        chmod 0755 "$tools/$binary.part" && mv "$tools/$binary.part" "$tools/$binary"
    done
    rm -rf "$work"
fi

# tracefs where systemd mounts it on a host: the USDT canary's uprobe event lives there
# (without it the canary cannot check its command's id).
if [ ! -e /sys/kernel/tracing/uprobe_events ] && [ -d /sys/kernel/tracing ] && [ "$(id -u)" -eq 0 ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || echo "setup: cannot mount tracefs on /sys/kernel/tracing" >&2
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (expected the Swift 6 toolchain)" >&2; exit 1; }
echo "setup: ok ($(qemu-system-x86_64 --version | head -1))"
