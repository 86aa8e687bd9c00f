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
Settings come from /results/aer-latency.json: {"inner_qemu": PATH or null, "rounds": N}.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario  # noqa: E402
from e2elib import Failure, event_named  # noqa: E402

TRACEFS = "/sys/kernel/tracing"
QEMU10_SHARE = "qemu10"   # the 9p tag aer_latency.py adds for an inner QEMU 10


def tracefs(mounted):
    is_mounted = os.path.exists(f"{TRACEFS}/events")
    if mounted and not is_mounted:
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True)
    elif not mounted and is_mounted:
        subprocess.run(["umount", TRACEFS], check=True)


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
                for kind, target, status in (("correctable RxErr", "-c rp1", "0x1"), ("non-fatal CmpltTO", "rp1", "0x4000")):
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
    control.send("done", passed=passed, failed=failed)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
