#!/usr/bin/env python3
"""A real fleet: Debian's Prometheus scrapes two `qmp-broker run` processes,
each in front of a real qemu-system-x86_64, with contrib's alert rules loaded (their `for:`
shortened to seconds). VM "vmb"'s QEMU runs as nobody (-runas), so it opens the broker's
trace log only through a directory nobody may enter:
  1. both brokers protect their VM: no alert;
  2. broker b restarts while its directory is 0700: QEMU refuses the logfile, the link-reset
     watch breaks, and QMPBrokerVMUnprotected fires for vmb (read from /api/v1/alerts);
  3. the directory is 0755 again: broker b's next check re-attaches and the alert resolves;
  4. broker a, running throughout, has dev0 re-added with a takeover that cannot work (no
     vfio device in a TCG QEMU): the alert fires for vma; dev0 gets an eventfd again over
     QMP (SCM_RIGHTS): it resolves;
  5. broker b stops: QMPBrokerDown fires for its target.
Loopback only. Prints one line per check and "fleet: N passed, M failed".
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROKER = os.environ.get("QMP_BROKER_BIN", os.path.join(ROOT, ".build/debug/qmp-broker"))
PROMETHEUS = shutil.which("prometheus") or os.path.join(ROOT, ".cache/tools/prometheus")
NOBODY = "65534:65534"
UNPROTECTED_FOR = "5s"

results = {"passed": 0, "failed": 0}


def check(what, ok, detail=""):
    print(f"fleet: {'ok  ' if ok else 'FAIL'} {what}" + (f"\n    {detail}" if detail and not ok else ""), flush=True)
    results["passed" if ok else "failed"] += 1
    return ok


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return None


def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except OSError:
        return None


class Fleet:
    def __init__(self, work):
        self.work = work
        self.processes = []
        self.brokers = {}
        self.prometheus_port = free_port()

    def spawn(self, argv, log, **kwargs):
        process = subprocess.Popen(argv, stdout=open(log, "ab"), stderr=subprocess.STDOUT, **kwargs)
        self.processes.append(process)
        return process

    def qemu(self, name, extra):
        directory = os.path.join(self.work, name)
        os.makedirs(directory, mode=0o755)
        os.chmod(directory, 0o755)  # QEMU as nobody must reach the trace log inside
        qmp = os.path.join(directory, "qemu.qmp")
        self.spawn(["qemu-system-x86_64", "-M", "q35", "-accel", "tcg", "-S", "-m", "64", "-display", "none",
                    "-nodefaults", "-no-user-config",
                    "-device", "pcie-root-port,id=rp0,chassis=1",
                    "-device", "virtio-rng-pci,id=dev0,bus=rp0,aer=on",
                    "-qmp", f"unix:{qmp},server=on,wait=off"] + extra, os.path.join(directory, "qemu.log"))
        check(f"QEMU of {name} listens", wait_for("qmp", lambda: os.path.exists(qmp), 30) is not None)
        return directory, qmp

    def start_broker(self, name, qmp, directory, port, owner):
        """`qmp-broker run` with dev0 and an inherited eventfd as its error trigger."""
        config = os.path.join(directory, "broker.toml")
        sysfs = os.path.join(directory, "sysfs")
        os.makedirs(sysfs, exist_ok=True)
        with open(config, "w") as file:
            file.write(f'socket-dir = "{directory}"\nsysfs-root = "{sysfs}"\nsysfs-poll-ms = 0\n'
                       + (f'trace-log-owner = "{owner}"\n' if owner else "")
                       + f'[[vm]]\nname = "{name}"\nqmp = "{qmp}"\nlink-reset-check-ms = 500\n'
                       + '[[vm.device]]\nid = "dev0"\nhost = "0000:3b:00.0"\n')
        eventfd = os.eventfd(0)
        process = self.spawn([BROKER, "run", "--config", config, "--metrics-listen", f"127.0.0.1:{port}",
                              "--eventfd", f"{name}/dev0/any={eventfd}"],
                             os.path.join(directory, "broker.log"), pass_fds=[eventfd])
        os.close(eventfd)
        self.brokers[name] = process
        return process

    def stop_broker(self, name):
        process = self.brokers.pop(name)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)

    def start_prometheus(self, targets):
        rules = open(os.path.join(ROOT, "contrib/qmp-broker.rules.yml")).read()
        # Seconds, not minutes: the rules themselves are what is tested.
        rules = re.sub(r"for: \d+m", f"for: {UNPROTECTED_FOR}", rules)
        with open(os.path.join(self.work, "rules.yml"), "w") as file:
            file.write(rules)
        with open(os.path.join(self.work, "prometheus.yml"), "w") as file:
            file.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                       "rule_files: [rules.yml]\n"
                       "scrape_configs:\n  - job_name: qmp-broker\n    static_configs:\n"
                       f"      - targets: [{', '.join(repr(t) for t in targets)}]\n")
        self.spawn([PROMETHEUS, f"--config.file={self.work}/prometheus.yml",
                    f"--storage.tsdb.path={self.work}/tsdb",
                    f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
                    "--log.level=warn"],
                   os.path.join(self.work, "prometheus.log"), cwd=self.work)

    def api(self, path, **query):
        url = f"http://127.0.0.1:{self.prometheus_port}/api/v1/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return get_json(url)

    def alerts(self, name):
        reply = self.api("alerts")
        if not reply:
            return []
        return [a for a in reply["data"]["alerts"] if a["labels"].get("alertname") == name]

    def value(self, expr):
        reply = self.api("query", query=expr)
        if not reply or reply.get("status") != "success":
            return None
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in reply["data"]["result"]}

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


class QMPClient:
    """Just enough QMP for the broker's own commands (descriptors by SCM_RIGHTS)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.sock.settimeout(30)
        self.buffer = b""
        self.message()  # greeting
        self.execute("qmp_capabilities")

    def message(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("broker closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, fds=(), **arguments):
        request = json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n"
        socket.send_fds(self.sock, [request], list(fds)) if fds else self.sock.sendall(request)
        while True:
            reply = self.message()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise RuntimeError(f"{command}: {reply['error']}")


def unprotected_alert(fleet, vm, state):
    return [a for a in fleet.alerts("QMPBrokerVMUnprotected") if a["labels"].get("vm") == vm and a["state"] == state]


def main():
    for tool, path in (("qmp-broker", BROKER), ("prometheus", PROMETHEUS)):
        if not os.access(path, os.X_OK):
            check(f"{tool} is at {path}", False, "run `make build` / scripts/setup.sh")
            return
    work = tempfile.mkdtemp(prefix="qmp-broker-fleet.")
    os.chmod(work, 0o755)
    fleet = Fleet(work)
    try:
        dir_a, qmp_a = fleet.qemu("vma", [])
        dir_b, qmp_b = fleet.qemu("vmb", ["-runas", "nobody"])
        port_a, port_b = free_port(), free_port()
        fleet.start_broker("vma", qmp_a, dir_a, port_a, owner=None)
        fleet.start_broker("vmb", qmp_b, dir_b, port_b, owner=NOBODY)
        fleet.start_prometheus([f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"])

        both_up = wait_for("targets", lambda: (fleet.value("up") or {}) and all(
            v == 1 for v in fleet.value("up").values()) and len(fleet.value("up")) == 2, 60)
        check("Prometheus scrapes both brokers (up == 1)", both_up is not None, f"{fleet.value('up')}")
        protected = wait_for("protected", lambda: fleet.value("qmp_broker_devices_unprotected == 0")
                             and len(fleet.value("qmp_broker_devices_unprotected == 0")) == 2, 60)
        check("both VMs protected: qmp_broker_devices_unprotected == 0 on both",
              protected is not None, f"{fleet.value('qmp_broker_devices_unprotected')}")
        watch = fleet.value('qmp_broker_link_reset_watch{source="trace-log"} == 1') or {}
        check("both link-reset watches intact, source trace-log", len(watch) == 2, f"{watch}")
        triggers = fleet.value('qmp_broker_error_trigger_active{source="eventfd"} == 1') or {}
        check("both devices' error triggers active, source eventfd", len(triggers) == 2, f"{triggers}")
        version = subprocess.run([BROKER, "--version"], capture_output=True, text=True).stdout.strip()
        info = fleet.value("qmp_broker_build_info") or {}
        check(f"qmp_broker_build_info names version {version} on both",
              len(info) == 2 and all(("version", version) in labels for labels in info), f"{info}")
        ready = fleet.value("qmp_broker_ready == 1") or {}
        check("qmp_broker_ready is 1 on both", len(ready) == 2, f"{ready}")
        time.sleep(2)
        check("no QMPBrokerVMUnprotected while protected", fleet.alerts("QMPBrokerVMUnprotected") == [],
              f"{fleet.alerts('QMPBrokerVMUnprotected')}")

        # 2. Broker b restarts while its directory is closed to QEMU (nobody): QEMU cannot
        # reach the trace log, whoever owns the file, and refuses the broker's logfile.
        fleet.stop_broker("vmb")
        os.chmod(dir_b, 0o700)
        broken_at = time.monotonic()
        fleet.start_broker("vmb", qmp_b, dir_b, port_b, owner=NOBODY)
        pending = wait_for("pending", lambda: unprotected_alert(fleet, "vmb", "pending")
                           or unprotected_alert(fleet, "vmb", "firing"), 60)
        pending_after = time.monotonic() - broken_at
        firing = wait_for("firing", lambda: unprotected_alert(fleet, "vmb", "firing"), 60)
        firing_after = time.monotonic() - broken_at
        check(f"QMPBrokerVMUnprotected fires for vmb (pending after {pending_after:.1f} s, "
              f"firing after {firing_after:.1f} s, for: {UNPROTECTED_FOR})", firing is not None,
              f"{fleet.api('alerts')}\n{open(os.path.join(dir_b, 'broker.log')).read()[-2000:]}")
        if os.environ.get("FLEET_SHOW"):  # what README's metrics section quotes
            scrape = urllib.request.urlopen(f"http://127.0.0.1:{port_b}/metrics", timeout=5).read().decode()
            print("\n".join(line for line in scrape.splitlines() if re.match(
                r"qmp_broker_(link_reset_watch|error_trigger|devices_|up|ready|build_info)", line)))
            print(json.dumps(firing[0], indent=1))
        check("only vmb is alerted", not unprotected_alert(fleet, "vma", "firing")
              and not unprotected_alert(fleet, "vma", "pending"))
        none_watch = fleet.value('qmp_broker_link_reset_watch{vm="vmb",source="none"}') or {}
        check("vmb's watch is shown broken (source none, 0)", list(none_watch.values()) == [0.0], f"{none_watch}")
        log_b = open(os.path.join(dir_b, "broker.log")).read()
        check("broker b logged why (guest link resets are not watched)",
              "guest link resets are not watched" in log_b, log_b[-2000:])

        # 3. The directory opened again: the running broker's next check re-attaches, and the
        # alert resolves with the same broker process (no restart, no stale series).
        os.chmod(dir_b, 0o755)
        restored_at = time.monotonic()
        resolved = wait_for("resolved", lambda: fleet.value('qmp_broker_devices_unprotected{vm="vmb"} == 0')
                            and fleet.alerts("QMPBrokerVMUnprotected") == [], 60)
        resolved_after = time.monotonic() - restored_at
        check(f"QMPBrokerVMUnprotected resolves for vmb once QEMU can reach the log ({resolved_after:.1f} s)",
              resolved is not None, f"{fleet.alerts('QMPBrokerVMUnprotected')}")
        check("broker b ran through the fix (one upstream connect)",
              list((fleet.value('qmp_broker_upstream_connects_total{vm="vmb"}') or {}).values()) == [1.0])
        intact = wait_for("intact", lambda: list((fleet.value('qmp_broker_link_reset_watch{vm="vmb"}') or {}).values())
                          == [1.0], 20)
        check("vmb's watch is intact again (source trace-log, 1)", intact is not None
              and fleet.value('qmp_broker_link_reset_watch{vm="vmb",source="trace-log"} == 1'),
              f"{fleet.value('qmp_broker_link_reset_watch')}")

        # 4. With broker a running throughout: dev0 re-added with a takeover that cannot work
        # (the QEMU has no vfio device), then given an eventfd again over QMP.
        client = QMPClient(os.path.join(dir_a, "vma.qmp"))
        client.execute("vfio-device-del", id="dev0")
        client.execute("vfio-device-add", id="dev0", host="0000:3b:00.0", **{"error-trigger": "takeover"})
        broken_at = time.monotonic()
        # The takeover is tried once QOM has placed the device: an exchange with QEMU later.
        devices = wait_for("refused", lambda: [d for d in client.execute("query-vfio-devices")
                                               if "error-trigger-error" in d], 20)
        check("vma's dev0: takeover refused, query-vfio-devices says why", devices is not None,
              f"{client.execute('query-vfio-devices')}")
        firing = wait_for("firing", lambda: unprotected_alert(fleet, "vma", "firing"), 60)
        firing_after = time.monotonic() - broken_at
        trigger = fleet.value('qmp_broker_error_trigger_active{vm="vma",source="none"}') or {}
        check(f"QMPBrokerVMUnprotected fires for vma while its broker runs ({firing_after:.1f} s)",
              firing is not None and list(trigger.values()) == [0.0], f"{trigger} {fleet.api('alerts')}")
        client.execute("vfio-device-del", id="dev0")
        client.execute("vfio-device-add", id="dev0", host="0000:3b:00.0", **{"error-trigger": "eventfd"})
        eventfd = os.eventfd(0)
        client.execute("vfio-eventfd-add", fds=[eventfd], device="dev0", severity="any")
        os.close(eventfd)
        restored_at = time.monotonic()
        resolved = wait_for("resolved", lambda: fleet.alerts("QMPBrokerVMUnprotected") == [] or None, 60)
        resolved_after = time.monotonic() - restored_at
        check(f"QMPBrokerVMUnprotected resolves once vma's dev0 has its eventfd again ({resolved_after:.1f} s)",
              resolved is not None and fleet.value('qmp_broker_devices_unprotected{vm="vma"} == 0'),
              f"{fleet.alerts('QMPBrokerVMUnprotected')}")
        check("broker a ran throughout (one upstream connect)",
              list((fleet.value('qmp_broker_upstream_connects_total{vm="vma"}') or {}).values()) == [1.0])

        # 5. A broker that is down protects nothing, and its series go stale: QMPBrokerDown.
        fleet.stop_broker("vmb")
        down_at = time.monotonic()
        down = wait_for("down", lambda: [a for a in fleet.alerts("QMPBrokerDown")
                                         if a["labels"].get("instance") == f"127.0.0.1:{port_b}"
                                         and a["state"] == "firing"], 60)
        check(f"QMPBrokerDown fires for broker b once it is gone ({time.monotonic() - down_at:.1f} s)",
              down is not None and len(fleet.alerts("QMPBrokerDown")) == 1, f"{fleet.api('alerts')}")
    finally:
        fleet.stop()
        if results["failed"] == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"fleet: logs kept in {work}")
    print(f"fleet: {results['passed']} passed, {results['failed']} failed")


if __name__ == "__main__":
    main()
    sys.exit(1 if results["failed"] else 0)
