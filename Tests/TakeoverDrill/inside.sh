#!/bin/sh
# The takeover drill, inside the nested host (run by drill.py as the host's RUN program):
# a stock QEMU owns 0000:01:00.0, the probe takes its ERR trigger over. Each `*-inject`
# stage asks drill.py (outside) to inject an AER error at the host's root port. Then
# QEMU exits while the probe holds the device: a second QEMU cannot open it until the
# probe releases it, a third one after that can, and its own ERR handler is back.
R=/results
stage() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >>$R/stages; }
waitfor() { # file pattern tenths [count]: waits until the pattern is in the file count times
    i=0; while [ $i -lt $3 ]; do
        [ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "${4:-1}" ] && return 0; sleep 0.1; i=$((i+1)); done; return 1; }
uname -r >$R/uname
cd /tmp
inner() { # name: a stock QEMU owning the device, paused (the drill needs no guest)
    qemu-system-x86_64 -M q35 -accel tcg -S -m 64 -nodefaults -no-user-config -display none -msg timestamp=on \
        -device pcie-root-port,id=l2rp,chassis=1 -device vfio-pci,host=0000:01:00.0,id=hostdev0,bus=l2rp,rombar=0 \
        -qmp unix:/tmp/$1.qmp,server=on,wait=off >$R/$1.log 2>&1 &
}
realized() { # pid: waits until QEMU holds its vfio device fd, or it exited
    i=0; while [ $i -lt 300 ]; do
        ls -l /proc/$1/fd 2>/dev/null | grep -q 'vfio-device' && return 0
        kill -0 $1 2>/dev/null || return 1; sleep 0.1; i=$((i+1)); done; return 1; }

inner qemu1; Q=$!
realized $Q && sleep 1
ls -l /proc/$Q/fd >$R/qemu-fds.txt 2>&1
for f in /proc/$Q/fdinfo/*; do echo "== $f"; cat $f; done >$R/qemu-fdinfo.txt 2>&1
stage control-inject
waitfor $R/qemu1.log vfio_err_notifier_handler 300 && stage control-seen || stage control-missing

$R/vfio-takeover-probe $Q 0000:01:00.0 120 >$R/probe.log 2>&1 &
P=$!
waitfor $R/probe.log takeover 100
ls -l /proc/$P/fd >$R/probe-fds.txt 2>&1
stage takeover-inject
waitfor $R/probe.log ERR 300 && stage takeover-seen || stage takeover-missing
sleep 1
stage fatal-inject
waitfor $R/probe.log ERR 300 2 && stage fatal-seen || stage fatal-missing
sleep 1
grep -c vfio_err_notifier_handler $R/qemu1.log >$R/qemu1-err-lines.txt

# The VMM goes away while the probe still holds the device: a new VMM cannot have it.
kill $Q; wait $Q
stage qemu1-exited
inner qemu2; Q2=$!
if realized $Q2; then stage qemu2-realized; kill $Q2; wait $Q2; else wait $Q2; stage "qemu2-failed-$?"; fi

kill -TERM $P; wait $P
stage released
inner qemu3; Q3=$!
realized $Q3 && stage qemu3-realized || stage qemu3-failed
sleep 1
stage after-release-inject
waitfor $R/qemu3.log vfio_err_notifier_handler 300 && stage qemu3-err-seen || stage qemu3-err-missing
kill $Q3; wait $Q3
stage done
