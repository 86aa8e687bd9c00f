#!/usr/bin/env python3
"""The takeover drill: proves VFIOErrorTrigger against the real kernel's vfio-pci.

    Tests/TakeoverDrill/drill.py [BOOT_HOST_SCRIPT]

Boots the nested host of the host end-to-end test (scripts/boot-host.sh, or the script
given) with inside.sh as its program, injects an AER error at the host's root port rp1
for each stage inside.sh asks for, and prints what happened: QEMU's own ERR handler
fires before the takeover and never after it, the probe's eventfd fires instead,
while the probe holds the device a new QEMU cannot open it, and once released a new
QEMU owns it and its own ERR handler again. Needs a built
.build/debug/vfio-takeover-probe. Work files go to .cache/takeover-drill.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.join(REPO, ".cache/takeover-drill")
RESULTS = os.path.join(WORK, "results")
BOUND = 600  # seconds for the whole drill


class Monitor:
    """The outer QEMU's QMP socket, for HMP pcie_aer_inject_error."""

    def __init__(self, path):
        deadline = time.monotonic() + 60
        while True:
            try:
                self.socket = socket.socket(socket.AF_UNIX)
                self.socket.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.file = self.socket.makefile("rw")
        self.file.readline()
        self.execute("qmp_capabilities")

    def execute(self, command, **arguments):
        self.file.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
        self.file.flush()
        while True:
            message = json.loads(self.file.readline())
            if "return" in message or "error" in message:
                return message

    def inject(self, error):
        return self.execute("human-monitor-command", **{"command-line": f"pcie_aer_inject_error rp1 {error}"})


def read(name):
    try:
        with open(os.path.join(RESULTS, name)) as file:
            return file.read()
    except FileNotFoundError:
        return ""


def main():
    boot_host = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "scripts/boot-host.sh")
    probe = os.path.join(REPO, ".build/debug/vfio-takeover-probe")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(RESULTS)
    shutil.copy(probe, RESULTS)
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "inside.sh"), RESULTS)
    qmp = os.path.join(WORK, "outer.qmp")
    started = time.monotonic()
    with open(os.path.join(WORK, "outer.log"), "w") as log:
        outer = subprocess.Popen([boot_host, qmp, os.path.join(WORK, "console.log"), RESULTS, "/results/inside.sh"],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    monitor, injected = Monitor(qmp), set()
    while outer.poll() is None and time.monotonic() - started < BOUND:
        for stage in (line.split(" ")[0] for line in read("stages").splitlines()):
            if not stage.endswith("-inject") or stage in injected:
                continue
            injected.add(stage)
            error = "DLP" if stage == "fatal-inject" else "0x4000"  # fatal DLP, else non-fatal CmpltTO
            before = read("probe.log").count("ERR")
            sent = time.monotonic()
            answer = monitor.inject(error)
            seen = None
            while stage in ("takeover-inject", "fatal-inject") and time.monotonic() - sent < 5:
                if read("probe.log").count("ERR") > before:
                    seen = time.monotonic()
                    break
                time.sleep(0.002)
            heard = f"probe ERR after {(seen - sent) * 1000:.1f} ms" if seen else "no probe ERR"
            print(f"{time.monotonic() - started:6.1f} s  {stage}: {error} {answer.get('error', 'ok')}, {heard}", flush=True)
        time.sleep(0.05)
    if outer.poll() is None:
        outer.kill()
        print("takeover-drill: TIMEOUT")
    outer.wait()
    print(f"{time.monotonic() - started:6.1f} s  host powered off")
    for name in ("uname", "stages", "probe.log", "qemu1-err-lines.txt", "qemu-fds.txt", "probe-fds.txt",
                 "qemu1.log", "qemu2.log", "qemu3.log"):
        print(f"--- {name}\n{read(name)}", end="")
    probe_log = read("probe.log")
    stages = [line.split(" ")[0] for line in read("stages").splitlines()]
    passed = ("takeover: method=" in probe_log and probe_log.count("ERR") == 2 and "released" in probe_log
              and read("qemu1-err-lines.txt").strip() == "1"
              and any(stage.startswith("qemu2-failed") for stage in stages)
              and "qemu3-realized" in stages and "qemu3-err-seen" in stages)
    print("takeover-drill: PASS" if passed else "takeover-drill: FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
