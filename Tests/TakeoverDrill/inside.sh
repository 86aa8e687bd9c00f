#!/bin/sh
# The takeover drill, inside the nested host (run by drill.py as the host's RUN program):
# a stock QEMU owns 0000:01:00.0, the probe takes its ERR trigger over. Each `*-inject`
# stage asks drill.py (outside) to inject an AER error at the host's root port.
R=/results
stage() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >>$R/stages; }
waitfor() { # file pattern tenths [count]: waits until the pattern is in the file count times
    i=0; while [ $i -lt $3 ]; do
        [ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "${4:-1}" ] && return 0; sleep 0.1; i=$((i+1)); done; return 1; }
uname -r >$R/uname
cd /tmp
qemu-system-x86_64 -M q35 -accel tcg -S -m 64 -nodefaults -no-user-config -display none -msg timestamp=on \
  -device pcie-root-port,id=l2rp,chassis=1 -device vfio-pci,host=0000:01:00.0,id=hostdev0,bus=l2rp,rombar=0 \
  -qmp unix:/tmp/inner.qmp,server=on,wait=off >$R/inner-qemu.log 2>&1 &
Q=$!
i=0; while [ $i -lt 300 ]; do ls -l /proc/$Q/fd 2>/dev/null | grep -q 'vfio-device' && break; sleep 0.1; i=$((i+1)); done
sleep 1
ls -l /proc/$Q/fd >$R/qemu-fds.txt 2>&1
for f in /proc/$Q/fdinfo/*; do echo "== $f"; cat $f; done >$R/qemu-fdinfo.txt 2>&1
readlink /sys/bus/pci/devices/0000:01:00.0/iommu_group >$R/iommu-group.txt
stage control-inject
waitfor $R/inner-qemu.log vfio_err_notifier_handler 300 && stage control-seen || stage control-missing
$R/vfio-takeover-probe $Q 0000:01:00.0 60 >$R/probe.log 2>&1 &
P=$!
waitfor $R/probe.log takeover 100
ls -l /proc/$Q/fd >$R/qemu-fds-after.txt 2>&1
ls -l /proc/$P/fd >$R/probe-fds.txt 2>&1
stage takeover-inject
waitfor $R/probe.log ERR 300 && stage takeover-seen || stage takeover-missing
sleep 1
stage fatal-inject
waitfor $R/probe.log ERR 300 2 && stage fatal-seen || stage fatal-missing
sleep 1
grep -c vfio_err_notifier_handler $R/inner-qemu.log >$R/qemu-err-lines.txt
kill -TERM $P; wait $P
stage released
ls -l /proc/$Q/fd >$R/qemu-fds-released.txt 2>&1
stage after-release-inject
sleep 3
grep -c vfio_err_notifier_handler $R/inner-qemu.log >$R/qemu-err-lines-after-release.txt
kill $Q; wait $Q
stage done
