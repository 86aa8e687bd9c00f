#!/usr/bin/env bash
# The Debian package as an operator gets it, on a host with no Swift: builds it with
# dpkg-buildpackage (debian/, release binary with the Swift runtime linked statically),
# runs lintian, then installs it with apt into a minimal bookworm root (mmdebstrap
# --variant=minbase, Debian's packages only, cached outside the clone) and, in that root,
# runs `qmp-broker --version`, `check-config` on the shipped example and `qmp-broker run`
# in front of a QEMU started on this machine, over a bind-mounted socket directory, asked
# `query-status` by a QMP client from outside. Part of `make test`; one line per check,
# then "N passed, M failed". `--build-only` stops after the build (the host e2e test's
# systemd configuration installs that .deb).
set -uo pipefail
build_only=false
[ "${1:-}" != --build-only ] || build_only=true
cd "$(dirname "$0")/.."
repo=$(pwd)

cache=${QMP_BROKER_CACHE:-/var/cache/qmp-broker}
out=$repo/.build/deb
work=$(mktemp -d /tmp/qmp-broker-package.XXXXXX)
passed=0
failed=0
qemu_pid=

broker_pid=
cleanup() {
    [ -z "$broker_pid" ] || stop_broker
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

check() {
    local what=$1
    shift
    if "$@" >"$work/.out" 2>&1; then
        echo "package-check: ok   $what"
        passed=$((passed + 1))
    else
        echo "package-check: FAIL $what"
        sed 's/^/    /' "$work/.out" | tail -40
        failed=$((failed + 1))
    fi
}

finish() {
    echo "package-check: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# --- the package ---------------------------------------------------------------------
build_package() {
    rm -rf "$out" && mkdir -p "$out"
    PKG_OUT=$out nice -n 5 dpkg-buildpackage -b -us -uc \
        --buildinfo-option=-u"$out" --buildinfo-file="$out/qmp-broker_amd64.buildinfo" \
        --changes-option=-u"$out" --changes-file="$out/qmp-broker_amd64.changes" >"$out/build.log" 2>&1 \
        || { tail -40 "$out/build.log"; return 1; }
    ls "$out"/qmp-broker_*_amd64.deb
}
start=$SECONDS
# PACKAGE_CHECK_REUSE=1 checks the .debs already in .build/deb (while iterating on this script).
if [ -z "${PACKAGE_CHECK_REUSE:-}" ]; then
    check "dpkg-buildpackage -b -us -uc builds qmp-broker_*.deb (log: .build/deb/build.log)" build_package
    echo "package-check: the package build took $((SECONDS - start)) s"
fi
deb=$(ls "$out"/qmp-broker_*_amd64.deb 2>/dev/null | head -1)
[ -n "$deb" ] || finish
! $build_only || finish

# lintian with no errors (warnings and infos are listed, not counted).
lintian_clean() {
    local report
    report=$(lintian --fail-on error --display-info "$out/qmp-broker_amd64.changes" 2>&1)
    local status=$?
    echo "$report"
    return $status
}
check "lintian reports no errors" lintian_clean
# Errors and warnings in full; informational tags counted (the ICU data in the binary
# trips spelling-error-in-binary, and Swift does not build with _FORTIFY_SOURCE).
grep -E '^[EW]: ' "$work/.out" | sed 's/^/    lintian: /'
echo "package-check: lintian: $(grep -c '^E: ' "$work/.out") errors, $(grep -c '^W: ' "$work/.out") warnings, $(grep -c '^I: ' "$work/.out") informational tags"

# The binary links glibc, the C++ runtime, libjansson and libsqlite3: nothing of Swift's.
dpkg-deb -x "$deb" "$work/unpacked"
links_only_debian_libraries() {
    local libraries
    libraries=$(ldd "$work/unpacked/usr/bin/qmp-broker" | awk '{print $1}' | sort)
    echo "$libraries"
    ! grep -Ei 'swift|dispatch|foundation|icu' <<<"$libraries" || return 1
    for library in $libraries; do
        case $library in
            linux-vdso.so.1 | /lib64/ld-linux-x86-64.so.2 | libc.so.6 | libm.so.6 | libstdc++.so.6 | libgcc_s.so.1 \
                | libjansson.so.4 | libsqlite3.so.0) ;;
            *) echo "unexpected library: $library"; return 1 ;;
        esac
    done
}
check "ldd: only glibc, libstdc++, libgcc_s, libjansson and libsqlite3" links_only_debian_libraries
echo "package-check: ldd: $(tr '\n' ' ' <"$work/.out")"
echo "package-check: Depends: $(dpkg-deb -f "$deb" Depends)"

package_has_its_files() {
    local contents
    contents=$(dpkg-deb -c "$deb")
    for path in ./usr/bin/qmp-broker ./lib/systemd/system/qmp-broker.service ./etc/qmp-broker/qmp-broker.toml \
        ./usr/share/man/man1/qmp-broker.1.gz ./usr/share/bash-completion/completions/qmp-broker \
        ./usr/share/zsh/site-functions/_qmp-broker ./usr/share/fish/vendor_completions.d/qmp-broker.fish \
        ./usr/share/qmp-broker/qmp-broker.rules.yml; do
        grep -q " $path\$" <<<"$contents" || { echo "missing: $path"; return 1; }
    done
    dpkg-deb -I "$deb" conffiles | grep -qx /etc/qmp-broker/qmp-broker.toml || { echo "not a conffile"; return 1; }
    grep -q 'ExecStart=/usr/bin/qmp-broker run' "$work/unpacked/lib/systemd/system/qmp-broker.service"
}
check "the package holds the binary, unit, conffile, man page, completions and rules" package_has_its_files

# --- the bare root --------------------------------------------------------------------
# Debian's own mirrors, as this machine's apt uses them (one-line form for mmdebstrap).
mirrors() {
    local sources
    for sources in /etc/apt/sources.list.d/*.sources; do
        [ -f "$sources" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             { types = uris = suites = comps = ""
               for (i = 1; i <= NF; i++) {
                 if ($i ~ /^Types:/) types = substr($i, 8)
                 if ($i ~ /^URIs:/) uris = substr($i, 7)
                 if ($i ~ /^Suites:/) suites = substr($i, 9)
                 if ($i ~ /^Components:/) comps = substr($i, 13) }
               if (types ~ /deb/ && uris ~ /debian/) {
                 n = split(suites, s, " ")
                 for (j = 1; j <= n; j++) print "deb " uris " " s[j] " " comps } }' "$sources"
    done
    [ -f /etc/apt/sources.list ] && grep -E '^deb .*debian' /etc/apt/sources.list
    true
}
mirrors | grep -E '^deb ' | grep -E ' bookworm(-updates|-security)? ' >"$work/sources.list"
[ -s "$work/sources.list" ] || echo "deb http://deb.debian.org/debian bookworm main" >"$work/sources.list"
# The key: what makes the root (variant, suite, mirrors, this script's recipe version).
key=$( (echo "minbase bookworm recipe-1"; cat "$work/sources.list") | sha256sum | cut -c1-12)
root_tar=$cache/bare-bookworm-$key.tar
make_root() {
    mkdir -p "$cache"
    # mmdebstrap picks the output format from the name's extension: the partial file ends in .tar too.
    rm -rf "$cache/bare-bookworm-$key.partial.tar"
    nice -n 5 mmdebstrap --variant=minbase --quiet bookworm "$cache/bare-bookworm-$key.partial.tar" "$work/sources.list" \
        && mv "$cache/bare-bookworm-$key.partial.tar" "$root_tar"
}
start=$SECONDS
if [ -f "$root_tar" ]; then
    echo "package-check: bare root cached: $root_tar"
else
    check "mmdebstrap --variant=minbase bookworm (cached in $cache)" make_root
    echo "package-check: building the bare root took $((SECONDS - start)) s"
fi
[ -f "$root_tar" ] || finish

root=$work/root
mkdir -p "$root"
start=$SECONDS
tar -xf "$root_tar" -C "$root"
echo "package-check: unpacking the root took $((SECONDS - start)) s"
no_swift_in_root() {
    local found
    found=$(find "$root" -xdev \( -name 'libswift*' -o -name 'swift*' -path '*bin*' -o -name 'libdispatch*' \) -print | head)
    [ -z "$found" ] || { echo "$found"; return 1; }
}
check "the bare root holds no Swift toolchain or runtime" no_swift_in_root

# Everything in the root runs in a mount namespace of its own: its mounts go with it.
# unshare ignores SIGTERM while it waits for its child: it is stopped with SIGKILL, and
# --kill-child then sends the child SIGTERM.
in_root_command=(unshare --mount --fork --kill-child=SIGTERM -- bash -euc '
        root=$1; shift
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        [ -z "${SHARED:-}" ] || { mkdir -p "$root$SHARED"; mount --bind "$SHARED" "$root$SHARED"; }
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        exec chroot "$root" "$@"' _)
in_root() { "${in_root_command[@]}" "$root" "$@"; }

cp "$deb" "$root/tmp/"
deb_in_root=/tmp/$(basename "$deb")
# A simulation first: every package apt would install, except ours, comes from Debian.
# Without Recommends: the QEMU it recommends (150 packages) is on any VM host already,
# and what must hold is that Depends alone makes the binary run.
only_debian_packages() {
    in_root apt-get update -qq || return 1
    local plan
    plan=$(in_root apt-get install -s -y --no-install-recommends "$deb_in_root") || { echo "$plan"; return 1; }
    grep '^Inst ' <<<"$plan"
    local others
    others=$(grep '^Inst ' <<<"$plan" | grep -v '^Inst qmp-broker ' | grep -v '\[amd64\]\|\[all\]' )
    [ -z "$others" ] || { echo "odd lines: $others"; return 1; }
    others=$(grep '^Inst ' <<<"$plan" | grep -v '^Inst qmp-broker ' | grep -v '(.* Debian[-:A-Za-z0-9./, ]*\[' )
    [ -z "$others" ] || { echo "not from Debian: $others"; return 1; }
    DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -q --no-install-recommends "$deb_in_root"
}
start=$SECONDS
check "apt-get install ./$(basename "$deb") pulls only Debian packages" only_debian_packages
echo "package-check: apt-get update + install took $((SECONDS - start)) s; it installed: $(grep '^Inst ' "$work/.out" | awk '{print $2}' | tr '\n' ' ')"

check "qmp-broker --version runs in the bare root" in_root qmp-broker --version
check "qmp-broker check-config accepts the shipped /etc/qmp-broker/qmp-broker.toml" \
    in_root qmp-broker check-config /etc/qmp-broker/qmp-broker.toml
unit_enabled_not_started() {
    # Enabled through deb-systemd-helper's symlink; nothing started (no systemd here).
    [ -L "$root/etc/systemd/system/multi-user.target.wants/qmp-broker.service" ] || { ls -la "$root/etc/systemd/system/"*; return 1; }
    grep -qx /etc/qmp-broker/qmp-broker.toml "$root/var/lib/dpkg/info/qmp-broker.conffiles"
    ! pgrep -f "$root.*qmp-broker run" >/dev/null
}
check "the unit is enabled (not started) and the config is a conffile" unit_enabled_not_started

# --- serving a QEMU of the outer machine ----------------------------------------------
shared=$work/run
mkdir -p "$shared"
qemu-system-x86_64 -M q35 -accel tcg -S -m 64 -display none -nodefaults -no-user-config \
    -qmp "unix:$shared/qemu.qmp,server=on,wait=off" -daemonize -pidfile "$shared/qemu.pid" >"$work/qemu.log" 2>&1
qemu_pid=$(cat "$shared/qemu.pid" 2>/dev/null)
SHARED=$shared "${in_root_command[@]}" "$root" qmp-broker run --vm "vm1=$shared/qemu.qmp" --socket-dir "$shared/broker" \
    >"$work/broker.log" 2>&1 &
broker_pid=$!

qmp_through_the_broker() {
    python3 - "$shared/broker/vm1.qmp" <<'PYTHON'
import json, socket, sys, time
path = sys.argv[1]
deadline = time.monotonic() + 30
while True:
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
sock.settimeout(30)
stream = sock.makefile("rwb")
def message():
    while True:
        line = json.loads(stream.readline())
        if "event" not in line:
            return line
greeting = message()
print("greeting:", json.dumps(greeting))
assert "QMP" in greeting and "version" in greeting["QMP"], greeting
for command in ("qmp_capabilities", "query-status"):
    stream.write(json.dumps({"execute": command, "id": command}).encode() + b"\n")
    stream.flush()
    reply = message()
    print(command, "->", json.dumps(reply))
    assert reply.get("id") == command and "return" in reply, reply
assert reply["return"]["status"] == "prelaunch", reply
PYTHON
}
check "qmp-broker run in the bare root serves the outer QEMU: greeting and query-status" qmp_through_the_broker
cat "$work/.out" | sed 's/^/    /' | head -4
stop_broker() {
    [ -n "$broker_pid" ] || return 0
    kill -KILL "$broker_pid" 2>/dev/null
    wait "$broker_pid" 2>/dev/null
    broker_pid=
    # The broker itself (SIGTERM from --kill-child) is gone once its socket is.
    for _ in $(seq 100); do [ -e "$shared/broker/vm1.qmp" ] || break; sleep 0.1; done
}
stop_broker
grep -q "serving\|watching" "$work/broker.log" || sed 's/^/    broker: /' "$work/broker.log" | tail -20
finish
