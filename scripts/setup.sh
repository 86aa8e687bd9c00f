#!/usr/bin/env bash
# Installs what qmp-broker needs on Debian (idempotent): the C library it links,
# the QEMU it fronts in the demo and tests, and the third-party QMP clients the
# compatibility tests drive. Run as root (or with sudo available).
set -euo pipefail

apt_packages=(libjansson-dev linux-libc-dev pkg-config libsqlite3-dev qemu-system-x86 socat python3 python3-pip xz-utils cpio)
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

if ! python3 -c 'import qemu.qmp' 2>/dev/null; then
    echo "setup: installing the qemu.qmp Python client"
    python3 -m pip install --quiet --disable-pip-version-check qemu.qmp 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages qemu.qmp
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (expected the Swift 6 toolchain)" >&2; exit 1; }
echo "setup: ok ($(qemu-system-x86_64 --version | head -1))"
