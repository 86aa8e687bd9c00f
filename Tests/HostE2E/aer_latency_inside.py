#!/usr/bin/python3
"""The inside half of the AER latency check (Tests/HostE2E/aer_latency.py): runs in the
nested host like scenario.py, reusing its inner QEMU, broker and control channel.

For each way the broker can learn of a host error it starts the broker in front of a
running inner QEMU, injects correctable (RxErr, `-c rp1 0x1`) and non-fatal (CmpltTO,
`rp1 0x4000`) errors at the host's root port, and times injection request ->
VFIO_PCI_ERROR at the broker's client:
  * aer-tracepoint: tracefs mounted at /sys/kernel/tracing, so the broker hears the
    kernel's ras:aer_event (and polls the counters every 30 s);
  * sysfs poll: tracefs unmounted, so the broker falls back to its 1 s poll.
A correctable error reaches this host's kernel only when the outer QEMU is >= 8.1.
Then the window after device_add: the vfio device hot-plugged into an empty port through
the broker, and what query-vfio-devices says as soon as QEMU has answered.
Settings come from /results/aer-latency.json: {"inner_qemu": PATH or null, "rounds": N}.
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario  # noqa: E402
from e2elib import Failure, event_named  # noqa: E402

TRACEFS = "/sys/kernel/tracing"
QEMU10_SHARE = "qemu10"   # the 9p tag aer_latency.py adds for an inner QEMU 10


class KernelLog(threading.Thread):
    """/dev/kmsg lines with their kernel timestamps, mapped onto time.monotonic() by a
    marker line written at start: the AER core's last line about an error tells when
    the kernel emitted ras:aer_event (right after it), so the broker's own delay is
    measured apart from the nested host's slow injection path and serial console."""

    def __init__(self):
        super().__init__(daemon=True)
        self.fd = os.open("/dev/kmsg", os.O_RDWR)
        os.lseek(self.fd, 0, os.SEEK_END)
        self.lines = []        # (monotonic seconds, text)
        self.offset = None     # monotonic - kernel timestamp
        self.marker = f"aer-latency marker {os.getpid()}"
        self.written = time.monotonic()
        os.write(self.fd, self.marker.encode())

    def run(self):
        while True:
            record = os.read(self.fd, 8192).decode(errors="replace")
            header, _, text = record.partition(";")
            fields = header.split(",")
            if len(fields) < 3:
                continue
            stamp = int(fields[2]) / 1e6
            if self.offset is None and self.marker in text:
                self.offset = self.written - stamp
            if self.offset is not None:
                self.lines.append((stamp + self.offset, text.strip()))

    def first(self, since, words, timeout=5):
        """Monotonic time of the first line at or after `since` containing all words."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for moment, text in list(self.lines):
                if moment >= since - 0.05 and all(word in text for word in words):
                    return moment
            time.sleep(0.02)
        return None


def tracefs(mounted):
    is_mounted = os.path.exists(f"{TRACEFS}/events")
    if mounted and not is_mounted:
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True)
    elif not mounted and is_mounted:
        subprocess.run(["umount", TRACEFS], check=True)


class EmptyPortQEMU:
    """The inner QEMU of scenario.InnerQEMU without the vfio device: l2rp's slot is empty
    for a device_add through the broker."""

    def __init__(self, name):
        self.qmp_path = f"{scenario.RUN}/{name}.qmp"
        self.log = open(f"{scenario.RESULTS}/{name}.log", "w")
        self.process = subprocess.Popen([
            "qemu-system-x86_64", "-M", "q35", "-accel", "tcg", "-S", "-m", "64",
            "-nodefaults", "-no-user-config", "-display", "none", "-msg", "timestamp=on",
            "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
            "-device", f"pcie-root-port,id=l2rp,chassis=1,addr={scenario.INNER_PORT_SLOT:#x}.0",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        self.process.terminate()
        scenario.end_process(self.process, 20)
        self.log.close()


# What the broker used to wait for after a device_add before taking the trigger over:
# the QOM walk (discovery), then the placement.
OLD_PATH = [("qom-list", {"path": "/machine/peripheral"}), ("qom-list", {"path": "/machine/peripheral-anon"}),
            ("qom-get", {"path": "/machine/peripheral/hostdev1", "property": "host"}),
            ("qom-get", {"path": "/machine/peripheral/hostdev1", "property": "sysfsdev"}),
            ("qom-get", {"path": "/machine/peripheral/hostdev1", "property": "type"}),
            ("qom-get", {"path": "/machine/peripheral/hostdev1", "property": "parent_bus"})]


def device_add_window(control, rounds):
    """device_add of the vfio device through the broker: what query-vfio-devices says
    right after QEMU's answer, the broker's own takeover time, and, for comparison, how
    long the six QOM round trips the broker used to wait for take on this host."""
    for _ in range(rounds):
        vm = EmptyPortQEMU("inner-qemu-hotplug")
        broker = scenario.Broker(vm)
        try:
            sent = time.monotonic()
            broker.client.command("device_add", {"driver": "vfio-pci", "host": scenario.DEVICE, "id": "hostdev1",
                                                 "bus": "l2rp", "rombar": 0}, timeout=60)
            answered = time.monotonic()
            entry = broker.device("hostdev1")
            control.send("timing", name="device_add request -> answer (QEMU realizes the device)",
                         ms=round((answered - sent) * 1000, 1))
            control.send("measure", name="query-vfio-devices right after the device_add answer",
                         value={"error-trigger": entry and entry["error-trigger"], "sources": entry and entry["sources"]})
            started = time.monotonic()
            for command, arguments in OLD_PATH:
                broker.client.execute(command, arguments)
            control.send("timing", name="the six QOM round trips the broker used to wait for before its takeover",
                         ms=round((time.monotonic() - started) * 1000, 1))
        finally:
            broker.stop()
            vm.stop()
    with open(f"{scenario.RESULTS}/broker.log", errors="replace") as file:
        lines = [line.strip() for line in file if "takeover-ms" in line]
    control.send("measure", name="broker log: takeover after the answer", value=lines[-rounds:])


def kernel_to_loop(control):
    """The broker's own delay for ras:aer_event: the sample's kernel time (CLOCK_MONOTONIC)
    to the VM's loop, as the broker logged it."""
    with open(f"{scenario.RESULTS}/broker.log", errors="replace") as file:
        values = [float(line.split("kernel-to-loop-ms=")[1].split()[0]) for line in file if "kernel-to-loop-ms=" in line]
    if values:
        values.sort()
        control.send("measure", name="ras:aer_event record: kernel -> broker loop (ms; min, median, max, count)",
                     value=[values[0], values[len(values) // 2], values[-1], len(values)])


def main():
    os.makedirs(scenario.RUN, exist_ok=True)
    with open(f"{scenario.RESULTS}/aer-latency.json") as file:
        settings = json.load(file)
    control = scenario.Control()
    control.send("ready", uptime=float(open("/proc/uptime").read().split()[0]))
    inner = settings.get("inner_qemu")
    if inner:
        folder = os.path.dirname(inner)
        os.makedirs(folder, exist_ok=True)
        subprocess.run(["mount", "-t", "9p", "-o", "trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro",
                        QEMU10_SHARE, folder], check=True)
        os.environ["PATH"] = f"{folder}:{os.environ['PATH']}"
    version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    control.send("measure", name="inner QEMU", value=version)
    tracefs(True)
    control.send("measure", name="ras:aer_event format", value=open(f"{TRACEFS}/events/ras/aer_event/format").read()
                 if os.path.exists(f"{TRACEFS}/events/ras/aer_event/format") else "missing")
    rounds = settings.get("rounds", 3)
    kernel = KernelLog()
    kernel.start()
    passed = failed = 0
    vm = scenario.InnerQEMU("inner-qemu-latency")
    vm.qmp.command("cont")
    try:
        for mode, mounted in (("aer-tracepoint", True), ("sysfs poll", False)):
            tracefs(mounted)
            broker = scenario.Broker(vm)
            try:
                entry = broker.wait_device(lambda e: "takeover" in e.get("sources", []), 60, "takeover")
                heard = "aer-tracepoint" in entry["sources"]
                if heard != mounted:
                    raise Failure(f"sources {entry['sources']} with tracefs {'mounted' if mounted else 'unmounted'}")
                # The kernel's last line about the error ("[ 0] RxErr (First)"): the
                # tracepoint fires right after it, the ERR eventfd during recovery after.
                for kind, target, status, words in (("correctable RxErr", "-c rp1", "0x1", ("RxErr", "(First)")),
                                                    ("non-fatal CmpltTO", "rp1", "0x4000", ("CmpltTO", "(First)"))):
                    for _ in range(rounds):
                        sent, _ = control.inject(target, status)
                        severity = "correctable" if target.startswith("-c") else "non-fatal"
                        try:
                            arrival, event = broker.client.wait_event(event_named("VFIO_PCI_ERROR", severity=severity), 5, since=sent)
                        except Failure:
                            control.send("timing", name=f"{mode}: {kind} -> VFIO_PCI_ERROR: none within 5 s", ms=5000)
                            continue
                        control.send("timing", name=f"{mode}: {kind} -> VFIO_PCI_ERROR (source {event['data']['source']})",
                                     ms=round((arrival - sent) * 1000, 1))
                        handled = kernel.first(sent, words)
                        if handled is not None:
                            control.send("timing", name=f"{mode}: {kind}: kernel's last AER line -> VFIO_PCI_ERROR "
                                                        f"(source {event['data']['source']})",
                                         ms=round((arrival - handled) * 1000, 1))
                        time.sleep(0.3)   # the same-error window and the host's recovery
                passed += 1
                control.send("result", name=f"{mode}: errors reported", passed=True, detail=f"sources {entry['sources']}")
            except Exception as error:   # noqa: BLE001 — one mode's failure; the other still runs
                failed += 1
                control.send("result", name=f"{mode}: errors reported", passed=False, detail=f"{type(error).__name__}: {error}")
            finally:
                broker.stop()
    finally:
        vm.stop()
        tracefs(True)
    kernel_to_loop(control)
    try:
        device_add_window(control, settings.get("hotplug_rounds", 3))
        passed += 1
        control.send("result", name="device_add window", passed=True, detail="")
    except Exception as error:   # noqa: BLE001
        failed += 1
        control.send("result", name="device_add window", passed=False, detail=f"{type(error).__name__}: {error}")
    control.send("done", passed=passed, failed=failed)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
