#!/usr/bin/env python3
"""Host AER error -> VFIO_PCI_ERROR latency, with the kernel's ras:aer_event tracepoint
and with the sysfs poll alone, measured on the nested host (scripts/boot-host.sh).

    Tests/HostE2E/aer_latency.py [--outer-qemu DIR] [--inner-qemu WRAPPER] [--rounds N]

--outer-qemu puts DIR first on PATH for the host's own emulator (QEMU >= 8.1 is
needed for correctable errors to reach the host: scripts/fetch-qemu10.sh); --inner-qemu
shares a QEMU wrapper's folder into the host (at the same path) and runs it as the
inner QEMU. The inside half is aer_latency_inside.py. Prints one line per timing and
`aer-latency: N passed, M failed` last. Work files: .cache/host/aer-latency.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import Deadline, Failure, LineChannel, QMPClient, connect_unix  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INSIDE = os.path.join(REPO, "Tests/HostE2E/aer_latency_inside.py")
MODES = 3   # tracepoint, poll, device_add window


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outer-qemu", help="folder of the host's qemu-system-x86_64")
    parser.add_argument("--inner-qemu", help="qemu-system-x86_64 wrapper for the inner QEMU")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    arguments = parser.parse_args()

    run = os.path.join(REPO, ".cache/host/aer-latency")
    shutil.rmtree(run, ignore_errors=True)
    results = os.path.join(run, "results")
    os.makedirs(results)
    with open(os.path.join(results, "aer-latency.json"), "w") as file:
        json.dump({"inner_qemu": arguments.inner_qemu, "rounds": arguments.rounds}, file)
    environment = dict(os.environ)
    if arguments.outer_qemu:
        environment["PATH"] = f"{arguments.outer_qemu}:{environment['PATH']}"
    outer_version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True,
                                   env=environment).stdout.split("\n")[0]
    print(f"aer-latency: outer QEMU: {outer_version}")
    extra = []
    if arguments.inner_qemu:
        folder = os.path.dirname(os.path.abspath(arguments.inner_qemu))
        extra = ["--", "-fsdev", f"local,id=fsq,path={folder},security_model=none,readonly=on",
                 "-device", "virtio-9p-pci,fsdev=fsq,mount_tag=qemu10,bus=pcie.0,addr=9.0"]
    qmp_path, control_path, console = f"{run}/outer.qmp", f"{run}/control.sock", f"{run}/console.log"
    passed = failed = 0
    with open(f"{run}/outer-qemu.log", "w") as outer_log:
        outer = subprocess.Popen([os.path.join(REPO, "scripts/boot-host.sh"), "--control", control_path, qmp_path, console,
                                  results, INSIDE, *extra],
                                 stdin=subprocess.DEVNULL, stdout=outer_log, stderr=subprocess.STDOUT, env=environment)
    try:
        monitor = QMPClient(qmp_path, "outer QMP", timeout=60)
        control_socket = connect_unix(control_path, 30)
        control = LineChannel(control_socket.fileno(), "control")
        deadline = Deadline(arguments.timeout)
        finished = False
        while not deadline.passed() and not finished:
            message = control.receive(min(5.0, deadline.remaining()))
            if message is None:
                if outer.poll() is not None:
                    break
                continue
            op = message.get("op")
            if op == "inject":
                reply = monitor.hmp(f"pcie_aer_inject_error {message['target']} {message['status']}")
                control.send({"ok": reply.strip().startswith("OK"), "reply": reply})
            elif op == "timing":
                print(f"aer-latency:   {message['name']}: {message['ms']} ms")
            elif op == "measure":
                print(f"aer-latency:   {message['name']}: {message['value']}")
            elif op == "result":
                passed += message["passed"]
                failed += not message["passed"]
                print(f"aer-latency: {'PASS' if message['passed'] else 'FAIL'} {message['name']}: {message['detail']}")
            elif op == "log":
                print(f"aer-latency: {message['text']}")
            elif op == "ready":
                print(f"aer-latency: host up (kernel uptime {message['uptime']} s)")
            elif op == "done":
                finished = True
        outer.wait(60)
    except (Failure, subprocess.TimeoutExpired) as error:
        print(f"aer-latency: {error}")
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.wait()
    failed += max(0, MODES - passed - failed)
    print(f"aer-latency: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
