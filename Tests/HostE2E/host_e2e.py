#!/usr/bin/env python3
"""The host end-to-end test (`make host-e2e`): for each host configuration, boots
the nested host (scripts/boot-host.sh), serves the injections its scenario asks for
over ttyS1 by HMP on the outer QEMU (errors come from outside the host, as from
hardware), and prints the results, the timings and the measurements.

    Tests/HostE2E/host_e2e.py [--timeout SECONDS] [--config NAME]...

Configurations (CONFIGS below): 6.1+qemu7.2 (Debian 12), 6.12+qemu10 (Debian stable,
QEMU 10 both as the host's emulator and as the inner QEMU), and the SR-IOV runs on
6.12+qemu10: a VF of an igb PF that the host's igb driver owns, with the other VF on
igbvf, then with it bound to no driver; and 6.1+qemu7.2+systemd, where the host boots
systemd as PID 1 and the broker is the Debian package's unit (the .deb in .build/deb,
built by scripts/check-package.sh when missing or older than the sources).
6.12+qemu10+iommufd (QEMU's iommufd backend, on rebuilt modules) runs only when named
(`make host-e2e-iommufd`).

Exits non-zero when a scenario fails. Each configuration ends with its own line
`host-e2e: CONFIG: N passed, M failed`; the last line is `host-e2e: N passed, M failed`
across configurations. On a failure it prints the tails of the host console, the inner
QEMU logs and the broker log. Each configuration's files land in .cache/host/run/CONFIG
(kept until the next run); the images are cached outside the clone (scripts/build-host.sh).
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import Deadline, Failure, LineChannel, QMPClient, connect_unix  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCENARIO = os.path.join(REPO, "Tests/HostE2E/scenario.py")
SYSTEMD_ROOT = os.path.join(REPO, "Tests/HostE2E/systemd_root.py")   # the systemd host's e2e_run
SCENARIO_COUNT = 6   # when a scenario never says how many it runs


def qemu10():
    """The wrapper of Debian stable's QEMU 10 (cached outside the clone)."""
    return subprocess.run([os.path.join(REPO, "scripts/fetch-qemu10.sh")], check=True,
                          stdout=subprocess.PIPE, text=True).stdout.strip()


# name -> (kernel, outer QEMU is QEMU 10, inner QEMU is QEMU 10, endpoint)
CONFIGS = {
    "6.1+qemu7.2": ("6.1", False, False, "virtio"),
    "6.12+qemu10": ("6.12", True, True, "virtio"),
    "6.12+qemu10+sriov-igbvf": ("6.12", True, True, "igb"),
    "6.12+qemu10+sriov-nodriver": ("6.12", True, True, "igb"),
    # systemd as PID 1 (scripts/build-host-systemd.sh); 6.1 boots it faster under TCG.
    "6.1+qemu7.2+systemd": ("6.1-systemd", False, False, "virtio"),
    # Not in the default run (make host-e2e-iommufd): needs vfio and iommufd modules rebuilt
    # from Debian's source (scripts/build-iommufd-modules.sh, minutes on 2 cores, cached).
    "6.12+qemu10+iommufd": ("6.12-iommufd", True, True, "virtio"),
}
DEFAULT = [name for name in CONFIGS if "iommufd" not in name]


def host_folder(kernel):
    """Builds (cached) the host's kernel and initramfs folder."""
    if kernel.endswith("-systemd"):
        command = [os.path.join(REPO, "scripts/build-host-systemd.sh"), kernel[:-len("-systemd")]]
    else:
        command = [os.path.join(REPO, "scripts/build-host.sh"), kernel]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def package():
    """The .deb the systemd host installs: .build/deb's, rebuilt when missing or older
    than what goes into it (`make test` has just built it: scripts/check-package.sh)."""
    debs = glob.glob(os.path.join(REPO, ".build/deb/qmp-broker_*_amd64.deb"))
    # debian/ itself also holds what the build writes (debian/files, the staging tree).
    inputs = [os.path.join(REPO, name) for name in ("Package.swift", "Makefile", "contrib/qmp-broker.service",
                                                     "contrib/qmp-broker.toml", "debian/control", "debian/rules",
                                                     "debian/changelog")]
    for base, _, files in os.walk(os.path.join(REPO, "Sources")):
        inputs += [os.path.join(base, name) for name in files]
    newest = max(os.path.getmtime(path) for path in inputs if os.path.exists(path))
    if debs and os.path.getmtime(debs[0]) >= newest:
        return
    print("host-e2e: building the package (scripts/check-package.sh --build-only)", flush=True)
    subprocess.run([os.path.join(REPO, "scripts/check-package.sh"), "--build-only"], check=True, stdout=subprocess.DEVNULL)


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as file:
            return "".join(file.readlines()[-lines:])
    except OSError as error:
        return f"({error})\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=300, help="bound on each configuration's run (s)")
    parser.add_argument("--config", action="append", choices=list(CONFIGS), help="run only these (repeatable)")
    arguments = parser.parse_args()

    broker = os.path.join(REPO, ".build/debug/qmp-broker")
    names = arguments.config or DEFAULT
    if not os.access(broker, os.X_OK):
        print(f"host-e2e: {broker} missing (swift build first)")
        print(f"host-e2e: 0 passed, {SCENARIO_COUNT * len(names)} failed")
        return 1
    total_passed = total_failed = 0
    summaries = []
    for name in names:
        passed, failed, seconds = run_config(name, arguments.timeout)
        if failed and host_kernel_stalled(name):
            # TCG lost a timer interrupt of the emulated host's vCPU: its scheduler stood
            # still, so the run says nothing about the broker. One more boot, said aloud.
            print(f"host-e2e: {name}: the host's kernel stalled (RCU stall on its console): booting it once more")
            passed, failed, again = run_config(name, arguments.timeout)
            seconds += again
        total_passed += passed
        total_failed += failed
        summaries.append(f"host-e2e: {name}: {passed} passed, {failed} failed ({seconds:.0f} s)")
        print(summaries[-1])
    for line in summaries:
        print(line)
    print(f"host-e2e: {total_passed} passed, {total_failed} failed")
    return 0 if total_failed == 0 else 1


def host_kernel_stalled(name):
    """Whether the configuration's last host console shows an RCU stall."""
    console = os.path.join(REPO, ".cache/host/run", name, "console.log")
    try:
        with open(console, errors="replace") as log:
            return "detected stalls on CPUs" in log.read()
    except OSError:
        return False


def run_config(name, timeout):
    """Boots one configuration's host and runs its scenarios: (passed, failed, seconds)."""
    kernel, outer10, inner10, endpoint = CONFIGS[name]
    print(f"host-e2e: === {name}")
    begun = time.monotonic()
    run = os.path.join(REPO, ".cache/host/run", name)
    shutil.rmtree(run, ignore_errors=True)
    results = os.path.join(run, "results")
    os.makedirs(results)
    qmp_path, control_path, console = f"{run}/outer.qmp", f"{run}/control.sock", f"{run}/console.log"
    options = ["--control", control_path, "--kernel", kernel, "--endpoint", endpoint, "--config", name]
    try:
        # Built (cached) before the clock starts: boot-host.sh only finds it then.
        host_folder(kernel)
        run_program = SCENARIO
        if kernel.endswith("-systemd"):
            package()
            run_program = SYSTEMD_ROOT
            options += ["--share", "/var/lib/dpkg"]   # dpkg -i inside, against this machine's database
        if outer10 or inner10:
            wrapper = qemu10()
            options += ["--share", os.path.dirname(wrapper)]
            if outer10:
                options += ["--qemu", wrapper]
            if inner10:
                options += ["--inner-qemu", wrapper]
    except subprocess.CalledProcessError as error:
        print(f"host-e2e: {name}: preparing failed: {error}")
        return 0, SCENARIO_COUNT, time.monotonic() - begun

    started = time.monotonic()
    with open(f"{run}/outer-qemu.log", "w") as outer_log:
        outer = subprocess.Popen(
            [os.path.join(REPO, "scripts/boot-host.sh"), *options, qmp_path, console, results, run_program],
            stdin=subprocess.DEVNULL, stdout=outer_log, stderr=subprocess.STDOUT)
    outcomes, timings, passed, failed, finished, planned = [], [], 0, 0, False, SCENARIO_COUNT
    try:
        monitor = QMPClient(qmp_path, "outer QMP", timeout=60)
        control_socket = connect_unix(control_path, 30)   # kept: the channel only borrows its fd
        control = LineChannel(control_socket.fileno(), "control")
        deadline = Deadline(timeout)
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
            elif op == "plan":
                planned = message["count"]
            elif op == "inject":
                hmp_start = time.monotonic()
                flags = "-c " if message.get("correctable") else ""
                reply = monitor.hmp(f"pcie_aer_inject_error {flags}{message['target']} {message['status']}")
                hmp_ms = (time.monotonic() - hmp_start) * 1000
                control.send({"ok": reply.strip().startswith("OK"), "reply": reply, "hmp_ms": round(hmp_ms, 1)})
                print(f"host-e2e:   injected at the host: {flags}{message['target']} {message['status']} -> {reply.strip()} ({hmp_ms:.1f} ms)")
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
            # The results are written before the host powers off; a host whose last
            # process sits in the kernel (the gone VF's FLR) may not, so do not wait long.
            outer.wait(30 if not finished else 10)
        except subprocess.TimeoutExpired:
            pass
    except Failure as error:
        print(f"host-e2e: {error}")
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.wait()

    failed += max(0, planned - passed - failed)
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
    return passed, failed, time.monotonic() - begun


if __name__ == "__main__":
    sys.exit(main())
