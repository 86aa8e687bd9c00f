#!/usr/bin/env python3
"""The host end-to-end test (`make host-e2e`): boots the nested host
(scripts/boot-host.sh), serves the injections its scenario asks for over ttyS1
by HMP on the outer QEMU (errors come from outside the host, as from hardware),
and prints the results, the timings and the measurements.

    Tests/HostE2E/host_e2e.py [--timeout SECONDS] [--keep]

Exits non-zero when a scenario fails; the last line is `host-e2e: N passed, M failed`.
On a failure it prints the tails of the host console, the inner QEMU logs and the
broker log. Everything lands in .cache/host/run (kept until the next run).
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import Deadline, Failure, LineChannel, QMPClient, connect_unix  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCENARIO = os.path.join(REPO, "Tests/HostE2E/scenario.py")
SCENARIO_COUNT = 5


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as file:
            return "".join(file.readlines()[-lines:])
    except OSError as error:
        return f"({error})\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=420, help="bound on the whole run (s)")
    arguments = parser.parse_args()

    broker = os.path.join(REPO, ".build/debug/qmp-broker")
    if not os.access(broker, os.X_OK):
        print(f"host-e2e: {broker} missing (swift build first)")
        print(f"host-e2e: 0 passed, {SCENARIO_COUNT} failed")
        return 1
    run = os.path.join(REPO, ".cache/host/run")
    shutil.rmtree(run, ignore_errors=True)
    results = os.path.join(run, "results")
    os.makedirs(results)
    qmp_path, control_path, console = f"{run}/outer.qmp", f"{run}/control.sock", f"{run}/console.log"

    started = time.monotonic()
    with open(f"{run}/outer-qemu.log", "w") as outer_log:
        outer = subprocess.Popen(
            [os.path.join(REPO, "scripts/boot-host.sh"), "--control", control_path, qmp_path, console, results, SCENARIO],
            stdin=subprocess.DEVNULL, stdout=outer_log, stderr=subprocess.STDOUT)
    outcomes, timings, passed, failed, finished = [], [], 0, 0, False
    try:
        monitor = QMPClient(qmp_path, "outer QMP", timeout=60)
        control_socket = connect_unix(control_path, 30)   # kept: the channel only borrows its fd
        control = LineChannel(control_socket.fileno(), "control")
        deadline = Deadline(arguments.timeout)
        while not deadline.passed() and not finished:
            message = control.receive(min(5.0, deadline.remaining()))
            if message is None:
                if outer.poll() is not None:
                    break
                continue
            op = message.get("op")
            if op == "ready":
                timings.append(("host boot (QEMU start -> scenario running)", (time.monotonic() - started) * 1000))
                print(f"host-e2e: host up in {timings[-1][1] / 1000:.1f} s (kernel uptime {message['uptime']} s)")
            elif op == "inject":
                hmp_start = time.monotonic()
                reply = monitor.hmp(f"pcie_aer_inject_error {message['target']} {message['status']}")
                hmp_ms = (time.monotonic() - hmp_start) * 1000
                control.send({"ok": reply.strip().startswith("OK"), "reply": reply, "hmp_ms": round(hmp_ms, 1)})
                print(f"host-e2e:   injected at the host: {message['target']} {message['status']} -> {reply.strip()} ({hmp_ms:.1f} ms)")
            elif op == "log":
                print(f"host-e2e: {message['text']}")
            elif op == "timing":
                timings.append((message["name"], message["ms"]))
            elif op == "measure":
                print(f"host-e2e:   measured {message['name']}: {message['value']}")
            elif op == "result":
                outcomes.append(message)
                passed += message["passed"]
                failed += not message["passed"]
                print(f"host-e2e: {'PASS' if message['passed'] else 'FAIL'} {message['name']}: {message['detail']}")
            elif op == "done":
                finished = True
        if not finished:
            print(f"host-e2e: the scenario did not finish ({'timeout' if deadline.passed() else 'host exited'})")
        try:
            outer.wait(30)
        except subprocess.TimeoutExpired:
            pass
    except Failure as error:
        print(f"host-e2e: {error}")
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.wait()

    failed += SCENARIO_COUNT - passed - failed
    print("host-e2e: timings")
    grouped = {}
    for name, milliseconds in timings:
        grouped.setdefault(name, []).append(milliseconds)
    for name, values in grouped.items():
        spread = f"{values[0]:.1f}" if len(values) == 1 else f"{min(values):.1f}-{max(values):.1f} ({len(values)}x)"
        print(f"host-e2e:   {name}: {spread} ms")
    if failed:
        print(f"--- host console (tail of {console})\n{tail(console, 60)}")
        for name in sorted(os.listdir(results)):
            if name.endswith(".log"):
                print(f"--- {name} (tail)\n{tail(os.path.join(results, name))}")
        print(f"--- outer QEMU\n{tail(f'{run}/outer-qemu.log', 10)}")
    print(f"host-e2e: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
