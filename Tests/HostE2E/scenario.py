#!/usr/bin/python3
"""The inside half of the host end-to-end test: runs in the nested host (PID 1's
chroot, see scripts/build-host.sh), where 0000:01:00.0 is bound to the real
vfio-pci driver. It starts a stock inner QEMU that owns the device, and later the
built broker in front of it, and asks the driver outside (host_e2e.py) over
ttyS1 to inject AER errors into this host at its root port rp1.

Control messages on ttyS1, one JSON object a line:
  to the driver:   {"op": "inject", "target": "rp1", "status": "0x4000"}   (answered
                   {"ok": true, "reply": HMP text, "hmp_ms": ...})
                   {"op": "result", "name": ..., "passed": bool, "detail": ...}
                   {"op": "timing", "name": ..., "ms": ...}
                   {"op": "measure", "name": ..., "value": ...}
                   {"op": "log", "text": ...}, {"op": "done"}
Logs land in /results (the driver's results folder): inner-qemu*.log, broker.log,
uevents.log, measurements.json.

The configuration comes from the driver through /init (E2E_CONFIG, host_e2e.py's
CONFIGS): the inner QEMU is E2E_INNER_QEMU (default the system's 7.2); on a `qemu10`
host (QEMU >= 8.1 as the host's emulator) correctable errors reach the host kernel and
are part of the run; on an `sriov` host the device is VF 0 of an igb PF the host's igb
driver owns, and the other VF is on igbvf or on no driver; on a `systemd` host
(Tests/HostE2E/systemd_root.py) the broker is installed with `dpkg -i` from the
package scripts/check-package.sh built, and run by systemd as its unit
qmp-broker.service.
"""
import calendar
import glob
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import tty

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import Deadline, Failure, LineChannel, QMPClient, connect_unix, event_named  # noqa: E402

CONFIG = os.environ.get("E2E_CONFIG") or "6.1+qemu7.2"
INNER_QEMU = os.environ.get("E2E_INNER_QEMU") or "qemu-system-x86_64"
SRIOV = "sriov" in CONFIG
SYSTEMD = "systemd" in CONFIG   # systemd is PID 1; the broker is the Debian package's unit
IOMMUFD = "iommufd" in CONFIG   # QEMU's iommufd backend: /dev/iommu and the vfio cdev, no group
CORRECTABLE_REACHES_HOST = "qemu10" in CONFIG   # the host's emulator is QEMU >= 8.1 (SPEC 11)
DEVICE = "0000:01:00.0"      # the host's endpoint (nic0), bound to vfio-pci; on SR-IOV, VF 0
PORT = "0000:00:01.0"        # the host's root port rp1 above it
PF = "0000:01:00.0"          # SR-IOV: the igb PF (pf0), owned by the host's igb driver
SIBLINGS = []                # SR-IOV: the PF and the other VF, whose counters are read too
WATCHDOG_SEC = 15            # systemd: the unit's 30 s, halved by a drop-in to wait less past it
LINK_RESET_CHECK_MS = 1500   # the broker's periodic trace check, short so a late SBR passes several
RUN = "/run/e2e"
RESULTS = "/results"
REPO = os.environ.get("E2E_REPO", os.getcwd())
BROKER = os.path.join(REPO, ".build/debug/qmp-broker")
INNER_PORT_SLOT = 0x1C       # l2rp at 00:1c.0 in the inner VM
ECAM = 0xB0000000            # where q35 firmware (and enable_ecam) maps MMCONFIG
CMPLT_TO = "0x4000"
NETLINK_KOBJECT_UEVENT = 15   # linux/netlink.h; Python's socket module lacks the name          # uncorrectable status bit 14: Completion Timeout (non-fatal)


class Control:
    """The line channel to the driver outside, over the host's ttyS1."""

    def __init__(self):
        fd = os.open("/dev/ttyS1", os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        self.channel = LineChannel(fd, "control")
        self.lock = threading.Lock()

    def send(self, op, **members):
        with self.lock:
            self.channel.send({"op": op, **members})

    def log(self, text):
        self.send("log", text=text)

    def inject(self, target, status, correctable=False):
        """Asks the driver to inject at the host (outer QEMU HMP); returns the
        monotonic time the request was sent and the driver's answer."""
        sent = time.monotonic()
        self.sent_wall = time.time()   # for comparing with QEMU's and the broker's own timestamps
        self.send("inject", target=target, status=status, correctable=correctable)
        answer = self.channel.receive(30)
        if answer is None or not answer.get("ok"):
            raise Failure(f"injection {target} {status} failed: {answer!r}")
        return sent, answer


class QTest:
    """QEMU's qtest socket: guest-side config reads and writes without a guest."""

    def __init__(self, path):
        self.sock = connect_unix(path, 30)
        self.buffer = b""

    def command(self, line, timeout=30):
        self.sock.sendall(line.encode() + b"\n")
        deadline = Deadline(timeout)
        while b"\n" not in self.buffer:
            self.sock.settimeout(max(0.01, deadline.remaining()))
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Failure("qtest connection closed")
            self.buffer += chunk
        answer, self.buffer = self.buffer.split(b"\n", 1)
        answer = answer.decode()
        if not answer.startswith("OK"):
            raise Failure(f"qtest {line}: {answer}")
        return answer

    def enable_ecam(self):
        """Maps MMCONFIG (host bridge 0x60) as firmware does; do it while the VM is
        paused, since the 0xcf8/0xcfc pair is shared with a running firmware."""
        for offset, value in ((0x64, 0), (0x60, ECAM | 1)):
            self.command(f"outl 0xcf8 {0x80000000 | offset:#x}")
            self.command(f"outl 0xcfc {value:#x}")

    @staticmethod
    def address(bus, slot, offset):
        return ECAM + (bus << 20) + (slot << 15) + offset

    def read(self, bus, slot, offset, width):
        name = {1: "readb", 2: "readw", 4: "readl"}[width]
        return int(self.command(f"{name} {self.address(bus, slot, offset):#x}").split()[1], 16)

    def write(self, bus, slot, offset, value, width, timeout=30):
        name = {1: "writeb", 2: "writew", 4: "writel"}[width]
        self.command(f"{name} {self.address(bus, slot, offset):#x} {value:#x}", timeout)

    def capability(self, bus, slot, wanted):
        """Offset of standard capability `wanted` (0x10 = PCI Express), or None."""
        offset = self.read(bus, slot, 0x34, 1)
        for _ in range(48):
            if offset == 0:
                return None
            if self.read(bus, slot, offset, 1) == wanted:
                return offset
            offset = self.read(bus, slot, offset + 1, 1)
        return None

    def extended_capability(self, bus, slot, wanted):
        """Offset of extended capability `wanted` (1 = AER), or None."""
        offset = 0x100
        for _ in range(48):
            header = self.read(bus, slot, offset, 4)
            if header in (0, 0xFFFFFFFF):
                return None
            if header & 0xFFFF == wanted:
                return offset
            offset = header >> 20
            if offset < 0x100:
                return None
        return None


class UeventLog(threading.Thread):
    """Kernel uevents (netlink, group 1) for the device and ERROR_EVENTs, kept
    with their arrival time and written to /results/uevents.log."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
        self.sock.bind((0, 1))
        self.events = []
        self.file = open(os.path.join(RESULTS, "uevents.log"), "w")

    def run(self):
        while True:
            data = self.sock.recv(65536)
            arrival = time.monotonic()
            fields = data.split(b"\0")
            properties = dict(field.decode(errors="replace").split("=", 1) for field in fields[1:] if b"=" in field)
            if "ERROR_EVENT" in properties or DEVICE in properties.get("DEVPATH", ""):
                self.events.append((arrival, properties))
                self.file.write(f"{arrival:.6f} {fields[0].decode(errors='replace')} {json.dumps(properties)}\n")
                self.file.flush()

    def since(self, start):
        return [properties for arrival, properties in self.events if arrival >= start]

    def wait(self, start, error_event, timeout):
        deadline = Deadline(timeout)
        while not deadline.passed():
            for arrival, properties in self.events:
                if arrival >= start and properties.get("ERROR_EVENT") == error_event:
                    return arrival
            time.sleep(0.01)
        return None


def read_counters():
    """Every AER counter of the device and of the root port above it:
    {"0000:00:01.0/aer_dev_nonfatal": {"CmpltTO": 1, ...}, ...}."""
    counters = {}
    for device in (PORT, DEVICE, *SIBLINGS):
        folder = f"/sys/bus/pci/devices/{device}"
        for name in sorted(os.listdir(folder)):
            if not name.startswith("aer_"):
                continue
            with open(os.path.join(folder, name)) as file:
                lines = [line.split() for line in file.read().splitlines() if line.strip()]
            if len(lines) == 1 and len(lines[0]) == 1:
                counters[f"{device}/{name}"] = {"total": int(lines[0][0])}
            else:
                counters[f"{device}/{name}"] = {words[0]: int(words[1]) for words in lines if len(words) == 2}
    return counters


def qemu_message_time(log, text):
    """Wall-clock time of the first QEMU message containing text (`-msg timestamp=on`
    prefixes each with an ISO UTC time), or None."""
    for line in log.splitlines():
        if text in line and line[:4].isdigit():
            stamp = line.split(" ", 1)[0].rstrip("Z")
            seconds, _, fraction = stamp.partition(".")
            parsed = time.strptime(seconds, "%Y-%m-%dT%H:%M:%S")
            return calendar.timegm(parsed) + float("0." + (fraction or "0"))
    return None


def parse_seconds(text):
    """systemctl show's time span (\"30s\", \"1min 30s\", \"500ms\") in seconds."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600}
    total = 0.0
    for word in text.split():
        number = word.rstrip("abcdefghijklmnopqrstuvwxyz")
        if number and word[len(number):] in units:
            total += float(number) * units[word[len(number):]]
    return total


def event_time(event):
    """A QMP event's own wall-clock timestamp (seconds)."""
    return event["timestamp"]["seconds"] + event["timestamp"]["microseconds"] / 1e6


def counter_changes(before, after):
    """Only what moved: ["0000:00:01.0/aer_dev_nonfatal CmpltTO +1", ...]."""
    changes = []
    for file, values in after.items():
        for name, count in values.items():
            delta = count - before.get(file, {}).get(name, 0)
            if delta:
                changes.append(f"{file} {name} +{delta}")
    return changes


def end_process(process, timeout):
    """Waits for a process asked to exit; kills it after timeout seconds."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_sysfs(path, value):
    with open(path, "w") as file:
        file.write(value)


def driver_of(address):
    try:
        return os.path.basename(os.readlink(f"/sys/bus/pci/devices/{address}/driver"))
    except OSError:
        return None


def config_dword(address, offset=8):
    """A config-space dword as the host kernel reads it (0xffffffff when the function is
    gone). The default is revision + class: a VF's vendor and device ids read 0xffff by
    the SR-IOV spec."""
    with open(f"/sys/bus/pci/devices/{address}/config", "rb") as file:
        file.seek(offset)
        data = file.read(4)
    return struct.unpack("<I", data)[0] if len(data) == 4 else None


def aer_inject(address, uncorrectable=0, correctable=0):
    """An error reported by the function itself, through the kernel's own aer_inject
    module (/dev/aer_inject, struct aer_error_inj): QEMU cannot make igb or a VF send one."""
    domain, bus, slot_function = address.split(":")
    slot, function = slot_function.split(".")
    record = struct.pack("<BBBxIIIIIIi", int(bus, 16), int(slot, 16), int(function, 16),
                         uncorrectable, correctable, 0, 0, 0, 0, int(domain, 16))
    fd = os.open("/dev/aer_inject", os.O_WRONLY)
    try:
        os.write(fd, record)
    finally:
        os.close(fd)


class InnerQEMU:
    """A stock QEMU inside the host that owns the vfio device, paused at start."""

    def __init__(self, name):
        self.name = name
        self.qmp_path = f"{RUN}/{name}.qmp"            # the VMM socket (the broker's upstream)
        self.direct_path = f"{RUN}/{name}.direct.qmp"  # the test's own monitor: one client each
        self.qtest_path = f"{RUN}/{name}.qtest"
        self.log_path = f"{RESULTS}/{name}.log"
        command = [
            INNER_QEMU, "-M", "q35", "-accel", "tcg", "-S", "-m", "64",
            "-nodefaults", "-no-user-config", "-display", "none", "-msg", "timestamp=on",
            # Native hotplug on the inner root port, so the qtest side can play the
            # guest OS that powers the slot off after a hot-unplug request.
            "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
            "-device", f"pcie-root-port,id=l2rp,chassis=1,addr={INNER_PORT_SLOT:#x}.0",
            # rombar=0: with the ROM the inner firmware runs iPXE (SPEC 10).
            *(["-object", "iommufd,id=iommufd0"] if IOMMUFD else []),
            "-device", f"vfio-pci,host={DEVICE},id=hostdev0,bus=l2rp,rombar=0" + (",iommufd=iommufd0" if IOMMUFD else ""),
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-qmp", f"unix:{self.direct_path},server=on,wait=off",
            "-qtest", f"unix:{self.qtest_path},server=on,wait=off", "-qtest-log", "none",
        ]
        self.log = open(self.log_path, "w")
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.qmp = QMPClient(self.direct_path, f"{name} QMP", timeout=60)
        self.first_answer_ms = (time.monotonic() - self.started) * 1000
        self.qtest = QTest(self.qtest_path)
        # While paused: map ECAM, and number l2rp's secondary bus (1) as firmware will.
        self.qtest.enable_ecam()
        self.qtest.write(0, INNER_PORT_SLOT, 0x18, 0x00010100, 4)

    def status(self):
        return self.qmp.command("query-status")["status"]

    def log_text(self):
        with open(self.log_path, errors="replace") as file:
            return file.read()

    def secondary_bus_reset(self):
        """What a guest kernel's pci_reset_secondary_bus does on l2rp, through ECAM."""
        self.qtest.write(0, INNER_PORT_SLOT, 0x3E, 0x40, 2)
        self.qtest.write(0, INNER_PORT_SLOT, 0x3E, 0x00, 2)

    def stop(self):
        try:
            self.qmp.command("quit", timeout=10)
        except (Failure, OSError):
            pass
        end_process(self.process, 20)
        self.log.close()


class Broker:
    """The built qmp-broker in front of an inner QEMU's QMP socket."""

    socket_dir = f"{RUN}/broker"
    state_dir = f"{RUN}/state"

    def __init__(self, vm):
        os.makedirs(self.socket_dir, exist_ok=True)
        os.makedirs(self.state_dir, exist_ok=True)
        self.log = open(f"{RESULTS}/broker.log", "a")
        self.log.write(f"--- broker start {time.monotonic():.6f}\n")
        self.log.flush()
        config = f"{RUN}/broker.toml"
        with open(config, "w") as file:
            file.write(f'socket-dir = "{self.socket_dir}"\nstate-dir = "{self.state_dir}"\n\n'
                       f'[[vm]]\nname = "inner"\nqmp = "{vm.qmp_path}"\nlink-reset-check-ms = {LINK_RESET_CHECK_MS}\n')
        command = [BROKER, "run", "--config", config, "--log-level", "debug"]
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.path = f"{self.socket_dir}/inner.qmp"
        self.trace_log = f"{self.socket_dir}/inner.trace.log"
        try:
            self.client = QMPClient(self.path, "broker QMP", timeout=30)
        except Failure:
            self.process.kill()
            self.process.wait()
            self.log.close()
            raise

    def device(self, device_id="hostdev0"):
        for entry in self.client.command("query-vfio-devices"):
            if entry.get("id") == device_id:
                return entry
        return None

    def wait_device(self, match, timeout, what):
        deadline = Deadline(timeout)
        entry = None
        while not deadline.passed():
            entry = self.device()
            if entry is not None and match(entry):
                return entry
            time.sleep(0.1)
        raise Failure(f"query-vfio-devices: {what} not seen within {timeout} s (last: {entry})")

    def save_events(self):
        """Every event this broker's client saw, for reading after a run."""
        with open(f"{RESULTS}/broker-events.log", "a") as file:
            for arrival, event in self.client.events:
                file.write(f"{arrival:.6f} {json.dumps(event)}\n")

    def kill(self):
        self.save_events()
        self.client.close()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        self.save_events()
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
        end_process(self.process, 10)
        self.log.close()


class UnitBroker(Broker):
    """The packaged broker as systemd runs it (qmp-broker.service): a client of its
    socket in /run/qmp-broker; starting, reloading, killing and stopping go through
    systemctl."""

    unit = "qmp-broker.service"
    socket_dir = "/run/qmp-broker"
    config = "/etc/qmp-broker/qmp-broker.toml"

    def __init__(self, vm, extra=""):
        self.vm = vm
        with open(self.config, "w") as file:
            file.write(f'socket-dir = "{self.socket_dir}"\nstate-dir = "/var/lib/qmp-broker"\n\n'
                       f'[[vm]]\nname = "inner"\nqmp = "{vm.qmp_path}"\nlink-reset-check-ms = {LINK_RESET_CHECK_MS}\n'
                       + extra)
        self.path = f"{self.socket_dir}/inner.qmp"
        self.trace_log = f"{self.socket_dir}/inner.trace.log"
        self.client = None
        self.started = time.monotonic()

    def connect(self):
        self.client = QMPClient(self.path, "broker QMP (unit)", timeout=30)

    def wait_restarted(self, before, timeout):
        """Properties once systemd runs a new main process after the one in `before`."""
        deadline = Deadline(timeout)
        properties = {}
        while not deadline.passed():
            properties = self.show("ActiveState", "SubState", "MainPID", "NRestarts", "Result", "ExecMainStatus")
            if (properties["MainPID"] not in ("0", before["MainPID"])
                    and (properties["ActiveState"], properties["SubState"]) == ("active", "running")):
                break
            time.sleep(0.2)
        check(properties.get("MainPID") not in ("0", before["MainPID"]) and properties.get("ActiveState") == "active",
              f"not restarted: {properties}")
        check(int(properties["NRestarts"]) == int(before["NRestarts"]) + 1, f"NRestarts {before['NRestarts']} -> {properties['NRestarts']}")
        return properties

    def wait_vm(self, match, timeout, what, name="inner"):
        deadline = Deadline(timeout)
        entry = None
        while not deadline.passed():
            entry = next((vm for vm in self.client.command("query-broker")["vms"] if vm["name"] == name), None)
            if entry is not None and match(entry):
                return entry
            time.sleep(0.2)
        raise Failure(f"query-broker: {what} not seen within {timeout} s (last: {entry})")

    @classmethod
    def show(cls, *names):
        """systemctl show's properties of the unit: {name: value}."""
        output = systemctl("show", "-p", ",".join(names), cls.unit)
        return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

    def save_events(self):
        if self.client is not None:
            super().save_events()

    def close(self):
        self.save_events()
        if self.client is not None:
            self.client.close()
            self.client = None

    def stop(self):
        self.close()
        if self.show("ActiveState")["ActiveState"] in ("active", "activating", "reloading"):
            systemctl("stop", self.unit)


def systemctl(*arguments, timeout=60):
    """systemctl's output; a non-zero exit is a Failure with its output."""
    done = subprocess.run(["systemctl", *arguments], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if done.returncode != 0:
        raise Failure(f"systemctl {' '.join(arguments)}: exit {done.returncode}: {done.stdout.strip()}")
    return done.stdout


def journal(*arguments):
    """journalctl -u qmp-broker -o json's entries (after the given filters)."""
    done = subprocess.run(["journalctl", "-u", "qmp-broker", "-o", "json", "--no-pager", *arguments],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, timeout=60)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def copy_dpkg_entries(source, target, packages):
    """A dpkg database (admindir) with only these packages' status entries and file
    lists, copied from another."""
    for folder in ("info", "updates", "triggers"):
        os.makedirs(os.path.join(target, folder), exist_ok=True)
    with open(os.path.join(source, "status")) as file:
        stanzas = file.read().split("\n\n")
    kept = []
    for stanza in stanzas:
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Package") in packages and fields.get("Status") == "install ok installed":
            kept.append(stanza.strip("\n"))
            name = fields["Package"] + (f":{fields['Architecture']}" if fields.get("Multi-Arch") == "same" else "")
            for suffix in (".list", ".md5sums"):
                if os.path.exists(os.path.join(source, "info", name + suffix)):
                    shutil.copy(os.path.join(source, "info", name + suffix), os.path.join(target, "info", name + suffix))
    write_sysfs(os.path.join(target, "status"), "\n\n".join(kept) + "\n")
    write_sysfs(os.path.join(target, "available"), "")


def journal_messages(entries):
    return [entry.get("MESSAGE") for entry in entries if isinstance(entry.get("MESSAGE"), str)]


def check(condition, message):
    if not condition:
        raise Failure(message)


class Run:
    """The scenarios, in order; each reports a result, later ones use what
    earlier ones left running."""

    def __init__(self):
        self.control = Control()
        self.uevents = UeventLog()
        self.uevents.start()
        self.measurements = {}
        self.passed = self.failed = 0
        self.vm = None
        self.broker = None

    def measure(self, name, value):
        self.measurements[name] = value
        self.control.send("measure", name=name, value=value)

    def timing(self, name, milliseconds):
        self.measurements.setdefault("timings", {}).setdefault(name, []).append(round(milliseconds, 1))
        self.control.send("timing", name=name, ms=round(milliseconds, 1))

    def scenario(self, name, body):
        self.control.log(f"scenario {name}")
        try:
            detail = body() or ""
            self.passed += 1
            self.control.send("result", name=name, passed=True, detail=detail)
        except Exception as error:   # any error is this scenario's failure; the next ones still run
            self.failed += 1
            self.control.send("result", name=name, passed=False, detail=f"{type(error).__name__}: {error}")

    def start_vm(self, name):
        self.vm = InnerQEMU(name)
        self.timing("inner QEMU start -> first QMP answer", self.vm.first_answer_ms)

    def host_error(self, status, target="rp1", correctable=False, expect="SUCCESSFUL_RECOVERY"):
        """Injects at the host; returns (request time, counter changes) once the host
        kernel has finished handling it (its recovery uevent; a correctable error has
        none, its counters are read after a second)."""
        before = read_counters()
        sent, answer = self.control.inject(target, status, correctable)
        if correctable:
            time.sleep(1.0)
            recovered = None
        else:
            other = "FAILED_RECOVERY" if expect == "SUCCESSFUL_RECOVERY" else "SUCCESSFUL_RECOVERY"
            recovered = self.uevents.wait(sent, expect, 10) or self.uevents.wait(sent, other, 0.1)
        changes = counter_changes(before, read_counters())
        return sent, answer, recovered, changes

    # --- 1: stock QEMU, no broker -------------------------------------------------
    def control_scenario(self):
        self.start_vm("inner-qemu-control")
        self.vm.qmp.command("cont")
        check(self.vm.status() == "running", "inner VM not running after cont")
        self.inner_injection_measurements()
        sent, answer, recovered, changes = self.host_error(CMPLT_TO)
        arrival, _ = self.vm.qmp.wait_event(event_named("STOP"), 15, since=sent)
        handler = qemu_message_time(self.vm.log_text(), "vfio_err_notifier_handler")
        if handler is not None:
            self.timing("control: injection request -> QEMU's vfio_err_notifier_handler line", (handler - self.control.sent_wall) * 1000)
        self.timing("control: injection request -> STOP (stock QEMU)", (arrival - sent) * 1000)
        status = self.vm.status()
        self.measure("control: host counters that moved (non-fatal CmpltTO at rp1)", changes)
        self.measure("control: uevents", [f"{p.get('ACTION')} {p.get('DEVPATH')} {p.get('ERROR_EVENT', '')} "
                                          f"DEVICE_ONLINE={p.get('DEVICE_ONLINE', '')} DRIVER={p.get('DRIVER', '')}"
                                          for p in self.uevents.since(sent)])
        if recovered is not None:
            self.timing("control: injection request -> SUCCESSFUL_RECOVERY uevent", (recovered - sent) * 1000)
        check(status == "internal-error", f"query-status says {status}, expected internal-error")
        log = self.vm.log_text()
        check("vfio_err_notifier_handler" in log and "Unrecoverable error" in log,
              "QEMU did not print vfio_err_notifier_handler ... Unrecoverable error")
        reply = self.vm.qmp.execute("cont")
        self.measure("control: cont after internal-error", reply.get("error", {}).get("desc", "accepted"))
        self.host_source_measurements()
        self.vm.stop()
        self.vm = None
        return f"stock QEMU stopped with internal-error; HMP at host: {answer['reply'].strip()}"

    def host_source_measurements(self):
        """What the host kernel shows for errors reported by the endpoint itself and
        for a fatal error at rp1 (QEMU's own notifier has already stopped the VM)."""
        for target, status in (() if SRIOV else (("nic0", CMPLT_TO),)) + (("rp1", "DLP"), ("rp1", CMPLT_TO)):
            sent, answer, recovered, changes = self.host_error(status, target)
            self.measure(f"host: {target} {status}: counters that moved", changes)
            self.measure(f"host: {target} {status}: uevents", [
                f"{p.get('ERROR_EVENT', p.get('ACTION'))} DEVICE_ONLINE={p.get('DEVICE_ONLINE', '')}"
                for p in self.uevents.since(sent)])
            if recovered is not None:
                self.timing(f"host: {target} {status}: injection request -> recovery uevent", (recovered - sent) * 1000)

    def inner_injection_measurements(self):
        """Where does the inner QEMU 7.2 accept an injection for a vfio-pci device,
        and does it reach the inner root port (its Root Error Status)?"""
        qtest = self.vm.qtest
        bus = qtest.read(0, INNER_PORT_SLOT, 0x19, 1)
        port_aer = qtest.extended_capability(0, INNER_PORT_SLOT, 1)
        device_aer = qtest.extended_capability(bus, 0, 1)
        self.measure("inner: AER capability offsets (l2rp, hostdev0)", [port_aer, device_aer])
        functions = [(0, INNER_PORT_SLOT), (bus, 0)]
        self.measure("inner: COMMAND of l2rp, hostdev0 as firmware left them",
                     [f"{qtest.read(b, slot, 0x04, 2):#06x}" for b, slot in functions])
        # The four error-reporting enables in DEVCTL, as a guest's AER driver sets
        # them, on the port and on the device; and SERR# forwarding in l2rp's Bridge
        # Control, as Linux's pci_configure_serr sets it.
        for target_bus, slot in functions:
            express = qtest.capability(target_bus, slot, 0x10)
            if express is not None:
                qtest.write(target_bus, slot, express + 8, qtest.read(target_bus, slot, express + 8, 2) | 0x000F, 2)
        qtest.write(0, INNER_PORT_SLOT, 0x3E, qtest.read(0, INNER_PORT_SLOT, 0x3E, 2) | 0x0002, 2)
        # With SERR# in COMMAND off, then on (on both functions): QEMU's message path
        # also checks it.
        for serr in (False, True):
            for target_bus, slot in functions:
                command = qtest.read(target_bus, slot, 0x04, 2)
                qtest.write(target_bus, slot, 0x04, command | 0x0100 if serr else command & ~0x0100, 2)
            for target in ("hostdev0", "l2rp"):
                before = qtest.read(0, INNER_PORT_SLOT, port_aer + 0x30, 4) if port_aer else None
                device_status = qtest.read(bus, 0, device_aer + 4, 4) if device_aer else None
                reply = self.vm.qmp.hmp(f"pcie_aer_inject_error {target} {CMPLT_TO}")
                after = qtest.read(0, INNER_PORT_SLOT, port_aer + 0x30, 4) if port_aer else None
                device_after = qtest.read(bus, 0, device_aer + 4, 4) if device_aer else None
                self.measure(f"inner: pcie_aer_inject_error {target} {CMPLT_TO}, SERR# {'on' if serr else 'off'}", {
                    "hmp-reply": reply.strip(),
                    "l2rp root error status before/after": [f"{before:#x}", f"{after:#x}"] if port_aer else None,
                    "hostdev0 AER uncorrectable status before/after": [device_status, device_after],
                    "vm status": self.vm.status(),
                })
                if port_aer:
                    qtest.write(0, INNER_PORT_SLOT, port_aer + 0x30, 0x7F, 4)   # RW1C: clear for the next one

    # --- 2-5: with the broker -----------------------------------------------------
    def broker_non_fatal(self):
        self.start_vm("inner-qemu")
        started = time.monotonic()
        self.broker = Broker(self.vm)
        entry = self.broker.wait_device(lambda e: "takeover" in e.get("sources", []), 30, "hostdev0 with source takeover")
        self.timing("broker start -> takeover active", (time.monotonic() - started) * 1000)
        self.broker.client.command("cont")
        check(self.vm.status() == "running", "inner VM not running after cont")
        for _ in range(5):
            asked = time.monotonic()
            self.vm.qmp.command("query-status")
            self.timing("inner QEMU query-status round trip (running, direct)", (time.monotonic() - asked) * 1000)
        sent, answer, recovered, changes = self.host_error(CMPLT_TO)
        self.measure("broker: host counters that moved (non-fatal CmpltTO at rp1)", changes)
        arrival, event = self.broker.client.wait_event(event_named("VFIO_PCI_ERROR"), 15, since=sent)
        self.timing("non-fatal: injection request -> VFIO_PCI_ERROR at a broker client", (arrival - sent) * 1000)
        self.timing("non-fatal: injection request -> VFIO_PCI_ERROR's own timestamp", (event_time(event) - self.control.sent_wall) * 1000)
        self.measure("broker: non-fatal VFIO_PCI_ERROR", event["data"])
        data = event["data"]
        check(data.get("severity") == "non-fatal", f"severity {data.get('severity')}, expected non-fatal")
        check("CmpltTO" in data.get("errors", []), f"errors {data.get('errors')} lack CmpltTO")
        self.broker.client.poll_events(0.5)   # a stock STOP would have come 7-21 ms after the error
        status = self.vm.status()
        check(status == "running", f"inner VM is {status} after a non-fatal error with takeover")
        check("Unrecoverable error" not in self.vm.log_text(), "QEMU's own ERR notifier fired")
        return f"{data.get('severity')} {data.get('errors')} source {data.get('source')} action {data.get('action')}"

    def broker_fatal(self):
        check(self.broker is not None, "no broker from the previous scenario")
        client = self.broker.client
        sent, answer, recovered, changes = self.host_error("DLP")
        self.measure("broker: host counters that moved (fatal DLP at rp1)", changes)
        arrival, event = client.wait_event(event_named("VFIO_PCI_ERROR", severity="fatal"), 15, since=sent)
        self.timing("fatal: injection request -> VFIO_PCI_ERROR at a broker client", (arrival - sent) * 1000)
        self.timing("fatal: injection request -> VFIO_PCI_ERROR's own timestamp", (event_time(event) - self.control.sent_wall) * 1000)
        self.measure("broker: fatal VFIO_PCI_ERROR", event["data"])
        data = event["data"]
        check(data.get("link-error") is True, f"link-error {data.get('link-error')}, expected true")
        check(data.get("action") == "forward", f"action {data.get('action')}, expected forward")
        check(self.vm.status() == "running", "inner VM stopped by the fatal error itself")
        reset = time.monotonic()
        self.vm.secondary_bus_reset()
        self.timing("fatal: qtest SBR write round trip", (time.monotonic() - reset) * 1000)
        _, link_reset = client.wait_event(event_named("VFIO_LINK_RESET"), 15, since=reset)
        stop_arrival, _ = client.wait_event(event_named("STOP"), 15, since=reset)
        self.timing("fatal: guest SBR -> STOP at a broker client", (stop_arrival - reset) * 1000)
        self.measure("broker: VFIO_LINK_RESET", link_reset["data"])
        check(link_reset["data"].get("action") == "stop", f"VFIO_LINK_RESET action {link_reset['data'].get('action')}")
        return f"fatal {data.get('errors')} forwarded, SBR -> VFIO_LINK_RESET stop + STOP"

    def broker_correctable(self):
        """QEMU >= 8.1 as the host's emulator: a correctable RxErr at rp1 reaches the host
        kernel's counters (no ERR eventfd, no uevent) and becomes VFIO_PCI_ERROR."""
        check(self.broker is not None, "no broker from the previous scenario")
        client = self.broker.client
        before = read_counters()
        sent, answer = self.control.inject("rp1", "0x1", correctable=True)
        arrival, event = client.wait_event(event_named("VFIO_PCI_ERROR", severity="correctable"), 15, since=sent)
        self.timing("correctable: injection request -> VFIO_PCI_ERROR at a broker client", (arrival - sent) * 1000)
        self.measure("broker: host counters that moved (correctable RxErr at rp1)", counter_changes(before, read_counters()))
        self.measure("broker: correctable VFIO_PCI_ERROR", event["data"])
        data = event["data"]
        check("RxErr" in data.get("errors", []), f"errors {data.get('errors')} lack RxErr")
        check(self.vm.status() == "running", "inner VM not running after a correctable error")
        return f"correctable {data.get('errors')} source {data.get('source')} action {data.get('action')}"

    def guest_config_traffic(self, writes):
        """What a running guest does all the time: harmless config writes (l2rp's Bridge
        Control, written back unchanged), each one a pci_cfg_write trace line."""
        value = self.vm.qtest.read(0, INNER_PORT_SLOT, 0x3E, 2)
        for _ in range(writes):
            self.vm.qtest.write(0, INNER_PORT_SLOT, 0x3E, value, 2)

    def broker_late_reset(self):
        """A flagged guest SBR well after attach, past several periodic trace
        checks (link-reset-check-ms short), with guest config traffic before each check.
        It must stop the VM as the early one does."""
        check(self.broker is not None, "no broker from the previous scenario")
        client = self.broker.client
        if self.vm.status() != "running":
            client.command("cont")   # the VM the early SBR stopped; the flag clears with it
        check(self.vm.status() == "running", "inner VM not running after cont")
        sent, answer, recovered, changes = self.host_error("DLP")
        _, event = client.wait_event(event_named("VFIO_PCI_ERROR", severity="fatal"), 15, since=sent)
        check(event["data"].get("link-error") is True, f"link-error {event['data'].get('link-error')}, expected true")
        period = LINK_RESET_CHECK_MS / 1000
        sizes = []
        waited = time.monotonic()
        for _ in range(3):   # three periods: at least two checks, each after traffic
            self.guest_config_traffic(20)
            sizes.append(os.path.getsize(self.broker.trace_log) if os.path.exists(self.broker.trace_log) else None)
            time.sleep(period + 0.3)
        sizes.append(os.path.getsize(self.broker.trace_log) if os.path.exists(self.broker.trace_log) else None)
        self.measure("late SBR: trace log size after each round of traffic, and before the SBR", sizes)
        watch = self.broker.client.command("query-broker")
        self.measure("late SBR: query-broker before the SBR", watch)
        since_attach = time.monotonic() - self.broker.started
        reset = time.monotonic()
        self.vm.secondary_bus_reset()
        _, link_reset = client.wait_event(event_named("VFIO_LINK_RESET"), 15, since=reset)
        stop_arrival, _ = client.wait_event(event_named("STOP"), 15, since=reset)
        self.timing("late SBR: guest SBR -> STOP at a broker client", (stop_arrival - reset) * 1000)
        check(link_reset["data"].get("action") == "stop", f"VFIO_LINK_RESET action {link_reset['data'].get('action')}")
        status = self.vm.status()
        check(status != "running", f"inner VM is {status} after the late flagged SBR")
        return (f"SBR {since_attach:.0f} s after attach, {time.monotonic() - waited:.1f} s after the flag "
                f"(checks every {period:.1f} s) -> VFIO_LINK_RESET stop + STOP")

    def broker_restart(self):
        check(self.broker is not None, "no broker from the previous scenario")
        counted = self.broker.device()["counters"]["non-fatal"]
        self.broker.kill()
        self.broker.log.close()
        # An error while no broker runs: nobody acts on it (the trigger still points
        # at the dead broker's eventfd), so the new broker must catch up from the counters.
        self.host_error(CMPLT_TO)
        started = time.monotonic()
        self.broker = Broker(self.vm)
        entry = self.broker.wait_device(lambda e: "takeover" in e.get("sources", []), 30, "hostdev0 with source takeover")
        self.timing("broker restart -> takeover active", (time.monotonic() - started) * 1000)
        self.measure("broker: query-vfio-devices after restart", entry)
        check(entry.get("link-error") is True, f"link-error {entry.get('link-error')} after restart, expected true")
        entry = self.broker.wait_device(lambda e: e["counters"]["non-fatal"] > counted, 10,
                                        "the non-fatal error from while the broker was down counted")
        check("Unrecoverable error" not in self.vm.log_text(), "QEMU's own ERR notifier fired while the broker was down")
        return f"sources {entry.get('sources')}, link-error {entry.get('link-error')}, non-fatal count {counted} -> {entry['counters']['non-fatal']}"

    def host_unbind(self):
        check(self.broker is not None, "no broker from the previous scenario")
        client = self.broker.client
        if self.vm.status() != "running":
            client.command("cont")
        bus = self.vm.qtest.read(0, INNER_PORT_SLOT, 0x19, 1)
        self.measure("inner: COMMAND of l2rp, hostdev0 after a minute of firmware",
                     [f"{self.vm.qtest.read(b, slot, 0x04, 2):#06x}" for b, slot in ((0, INNER_PORT_SLOT), (bus, 0))])
        done = threading.Event()
        errors = []

        def unbind():
            try:
                with open("/sys/bus/pci/drivers/vfio-pci/unbind", "w") as file:
                    file.write(DEVICE)
            except OSError as error:
                errors.append(error)
            done.set()

        started = time.monotonic()
        threading.Thread(target=unbind, daemon=True).start()
        # vfio-pci relays the request (REQ) to QEMU, which asks the guest to eject:
        # the attention button of l2rp's slot. Play the guest OS: power the slot off
        # (Slot Control: power indicator off, power controller off).
        qtest = self.vm.qtest
        express = qtest.capability(0, INNER_PORT_SLOT, 0x10)
        deadline = Deadline(20)
        while not deadline.passed():
            status = qtest.read(0, INNER_PORT_SLOT, express + 0x1A, 2)
            if status & 0x0001:   # Attention Button Pressed
                break
            time.sleep(0.05)
        check(not deadline.passed(), "QEMU never pressed l2rp's attention button (no REQ reached it?)")
        self.timing("unbind -> attention button (REQ reached QEMU)", (time.monotonic() - started) * 1000)
        control = qtest.read(0, INNER_PORT_SLOT, express + 0x18, 2)
        qtest.write(0, INNER_PORT_SLOT, express + 0x18, control | 0x0300 | 0x0400, 2)
        client.wait_event(event_named("DEVICE_DELETED", device="hostdev0"), 20, since=started)
        check(done.wait(30), "the host unbind did not complete within 30 s")
        self.timing("unbind -> unbind done", (time.monotonic() - started) * 1000)
        check(not errors, f"unbind failed: {errors}")
        check(not os.path.exists(f"/sys/bus/pci/devices/{DEVICE}/driver"), "device still bound")
        return "REQ reached QEMU, DEVICE_DELETED, unbind completed"

    # --- SR-IOV: a VF beside a host-driven PF ------------------------------------
    def sriov_setup(self):
        """igb owns the PF; VFs without autoprobe; VF 0 to vfio-pci (the inner QEMU's),
        VF 1 to igbvf or to no driver, as the configuration says."""
        global DEVICE
        deadline = Deadline(30)
        while driver_of(PF) != "igb" and not deadline.passed():
            time.sleep(0.1)
        check(driver_of(PF) == "igb", f"PF {PF} driver {driver_of(PF)}, expected igb")
        folder = f"/sys/bus/pci/devices/{PF}"
        write_sysfs(f"{folder}/sriov_drivers_autoprobe", "0")
        started = time.monotonic()
        write_sysfs(f"{folder}/sriov_numvfs", "2")
        self.timing("sriov_numvfs=2", (time.monotonic() - started) * 1000)
        vfs = [os.path.basename(os.readlink(f"{folder}/virtfn{index}")) for index in range(2)]
        DEVICE = vfs[0]
        SIBLINGS[:] = [PF, vfs[1]]
        write_sysfs(f"/sys/bus/pci/devices/{vfs[0]}/driver_override", "vfio-pci")
        write_sysfs("/sys/bus/pci/drivers_probe", vfs[0])
        if CONFIG.endswith("igbvf"):
            write_sysfs(f"/sys/bus/pci/devices/{vfs[1]}/driver_override", "igbvf")
            write_sysfs("/sys/bus/pci/drivers_probe", vfs[1])
        functions = {address: {"driver": driver_of(address),
                               "iommu-group": os.path.basename(os.readlink(f"/sys/bus/pci/devices/{address}/iommu_group")),
                               "class/revision": f"{config_dword(address):#010x}",
                               "aer files": sorted(n for n in os.listdir(f"/sys/bus/pci/devices/{address}") if n.startswith("aer_"))}
                     for address in (PF, *vfs)}
        self.measure("sriov: functions", functions)
        check(driver_of(DEVICE) == "vfio-pci", f"VF {DEVICE} driver {driver_of(DEVICE)}, expected vfio-pci")
        wanted = "igbvf" if CONFIG.endswith("igbvf") else None
        check(driver_of(vfs[1]) == wanted, f"VF {vfs[1]} driver {driver_of(vfs[1])}, expected {wanted}")
        check(os.path.exists(f"/dev/vfio/{functions[DEVICE]['iommu-group']}"), "no /dev/vfio node for VF 0's group")
        return f"PF {PF} igb, VF {DEVICE} vfio-pci (group {functions[DEVICE]['iommu-group']}), VF {vfs[1]} {wanted or 'no driver'}"

    def sriov_pf_reported(self, reporter=None, label="PF"):
        """A non-fatal error reported by the PF (a sibling of the VF, not above it), from the
        kernel's aer_inject: the host walks the whole link, so the VF's ERR eventfd fires.
        The event must name the error and the function that reported it."""
        reporter = reporter or PF
        check(self.broker is not None, "no broker from the previous scenario")
        client = self.broker.client
        if self.vm.status() != "running":
            client.command("cont")
        before = read_counters()
        sent = time.monotonic()
        aer_inject(reporter, uncorrectable=0x4000)
        recovered = self.uevents.wait(sent, "SUCCESSFUL_RECOVERY", 10) or self.uevents.wait(sent, "FAILED_RECOVERY", 0.1)
        self.measure(f"sriov: {label}-reported CmpltTO (aer_inject): counters that moved", counter_changes(before, read_counters()))
        self.measure(f"sriov: {label}-reported CmpltTO: uevents", [f"{p.get('DEVPATH', '').rsplit('/', 1)[-1]} {p.get('ERROR_EVENT', p.get('ACTION'))}"
                                                           for p in self.uevents.since(sent)])
        arrival, event = client.wait_event(event_named("VFIO_PCI_ERROR"), 15, since=sent)
        self.timing(f"sriov: {label}-reported error -> VFIO_PCI_ERROR at a broker client", (arrival - sent) * 1000)
        self.measure(f"sriov: {label}-reported VFIO_PCI_ERROR", event["data"])
        check(event["data"].get("severity") == "non-fatal", f"severity {event['data'].get('severity')}")
        check("CmpltTO" in event["data"].get("errors", []), f"errors {event['data'].get('errors')} lack CmpltTO")
        check(reporter in event["data"].get("note", ""), f"the note {event['data'].get('note')!r} does not name {reporter}")
        client.poll_events(0.5)
        check(self.vm.status() == "running", "inner VM stopped by an error its PF reported")
        return f"VFIO_PCI_ERROR {event['data'].get('errors')} source {event['data'].get('source')}; note {event['data'].get('note', '')!r}"

    def sriov_failed_recovery(self):
        """The other VF on no driver: the host cannot recover the link (no error_detected
        callback). One fatal error (a second one hangs the host's AER thread in igb_down):
        VFIO_HOST_RECOVERY failed, host-recovery: failed, the flag set."""
        self.start_vm("inner-qemu")
        self.broker = Broker(self.vm)
        self.broker.wait_device(lambda e: "takeover" in e.get("sources", []), 30, "hostdev0 with source takeover")
        client = self.broker.client
        client.command("cont")
        sent, answer, recovered, changes = self.host_error("DLP", expect="FAILED_RECOVERY")
        self.measure("sriov no driver: fatal DLP at rp1: counters that moved", changes)
        self.measure("sriov no driver: uevents", [f"{p.get('DEVPATH', '').rsplit('/', 1)[-1]} {p.get('ERROR_EVENT', p.get('ACTION'))}"
                                                  for p in self.uevents.since(sent)])
        _, event = client.wait_event(event_named("VFIO_PCI_ERROR", severity="fatal"), 15, since=sent)
        _, recovery = client.wait_event(event_named("VFIO_HOST_RECOVERY"), 15, since=sent)
        self.measure("sriov no driver: VFIO_HOST_RECOVERY", recovery["data"])
        reads = {address: f"{config_dword(address):#010x}" for address in (PF, *SIBLINGS[1:], DEVICE)}
        self.measure("sriov no driver: class/revision dword as the host reads it after the failed recovery", reads)
        entry = self.broker.device()
        self.measure("sriov no driver: query-vfio-devices", entry)
        check(any(p.get("ERROR_EVENT") == "FAILED_RECOVERY" for p in self.uevents.since(sent)), "no FAILED_RECOVERY uevent")
        check(recovery["data"].get("result") == "failed", f"VFIO_HOST_RECOVERY result {recovery['data'].get('result')}")
        check(entry.get("host-recovery") == "failed", f"host-recovery {entry.get('host-recovery')}, expected failed")
        check(entry.get("link-error") is True, f"link-error {entry.get('link-error')}, expected true")
        return f"VFIO_HOST_RECOVERY failed, host-recovery: failed, link-error true; the host reads {reads}"

    def sriov_flag_stays(self):
        """After the failed host recovery the guest's own link reset stops the VM, and a
        cont through the broker is refused (the VF is gone); the flag stays: only the operator
        may clear it. The VF is gone (it reads
        0xffffffff), so QEMU's reset of it (FLR) blocks its main loop until the kernel's
        wait for the device gives up: the SBR write runs in a thread, with a long bound."""
        check(self.broker is not None, "no broker from the previous scenario")
        client = self.broker.client
        reset = time.monotonic()
        written = []

        def write():
            try:
                self.vm.qtest.write(0, INNER_PORT_SLOT, 0x3E, 0x40, 2, timeout=120)
                written.append(time.monotonic())
                self.vm.qtest.write(0, INNER_PORT_SLOT, 0x3E, 0x00, 2, timeout=120)
            except Exception as error:   # reported through `written` staying empty
                self.control.log(f"SBR write: {error}")

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        _, link_reset = client.wait_event(event_named("VFIO_LINK_RESET"), 120, since=reset)
        self.timing("gone VF: guest SBR -> VFIO_LINK_RESET", (time.monotonic() - reset) * 1000)
        stop_arrival, _ = client.wait_event(event_named("STOP"), 120, since=reset)
        self.timing("gone VF: guest SBR -> STOP", (stop_arrival - reset) * 1000)
        writer.join(120)
        if written:
            self.timing("gone VF: the SBR write blocked QEMU for", (written[0] - reset) * 1000)
        check(link_reset["data"].get("action") == "stop", f"VFIO_LINK_RESET action {link_reset['data'].get('action')}")
        reply = client.execute("cont")
        self.measure("sriov no driver: cont after the stop", reply.get("error", {}).get("desc", "accepted"))
        client.poll_events(1.0)
        cleared = [event for arrival, event in client.events if arrival >= reset and event["event"] == "VFIO_LINK_ERROR_CLEARED"]
        entry = self.broker.device()
        self.measure("sriov no driver: query-vfio-devices after cont", entry)
        check(not cleared, f"the flag was cleared: {cleared}")
        # The VF is gone: the broker keeps the guest from resuming on it.
        check("failed host recovery" in reply.get("error", {}).get("desc", ""), f"cont was not refused: {reply}")
        check(entry.get("link-error") is True, f"link-error {entry.get('link-error')} after cont, expected true")
        check(entry.get("host-recovery") == "failed", f"host-recovery {entry.get('host-recovery')}, expected failed")
        return f"VFIO_LINK_RESET stop + STOP; cont {reply.get('error', {}).get('desc', 'accepted')}; flag kept"

    # --- systemd: the packaged unit --------------------------------------------------
    def systemd_install(self):
        """dpkg -i of the package scripts/check-package.sh built, against a dpkg database
        holding the build machine's entries for the package's dependencies (with all of
        them, reading their file lists over 9p made dpkg -i take 100 s under TCG): the
        unit is enabled, not started. The inner QEMU starts meanwhile."""
        debs = sorted(glob.glob(os.path.join(REPO, ".build/deb/qmp-broker_*_amd64.deb")))
        check(debs, f"no .build/deb/qmp-broker_*_amd64.deb in {REPO} (scripts/check-package.sh builds it)")
        vm_errors = []

        def start_vm():
            try:
                self.start_vm("inner-qemu")
            except Exception as error:   # reported below
                vm_errors.append(error)

        # The test's one change to the unit: a shorter watchdog, so that outliving it takes
        # less waiting (the package's postinst reloads systemd, which reads the drop-in).
        os.makedirs(f"/etc/systemd/system/{UnitBroker.unit}.d", exist_ok=True)
        write_sysfs(f"/etc/systemd/system/{UnitBroker.unit}.d/e2e-watchdog.conf", f"[Service]\nWatchdogSec={WATCHDOG_SEC}s\n")
        starter = threading.Thread(target=start_vm, daemon=True)
        starter.start()
        started = time.monotonic()
        depends = subprocess.run(["dpkg-deb", "-f", debs[-1], "Depends"], stdout=subprocess.PIPE, text=True, check=True).stdout
        wanted = {word.split("(")[0].split(":")[0].strip() for part in depends.split(",") for word in part.split("|")}
        copy_dpkg_entries("/.dpkg-build-machine", "/var/lib/dpkg", wanted)
        done = subprocess.run(["dpkg", "-i", debs[-1]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        self.timing("systemd: dpkg -i", (time.monotonic() - started) * 1000)
        with open(f"{RESULTS}/dpkg.log", "w") as file:
            file.write(done.stdout)
        check(done.returncode == 0, f"dpkg -i exit {done.returncode}: {done.stdout.strip()[-400:]}")
        enabled = subprocess.run(["systemctl", "is-enabled", UnitBroker.unit], stdout=subprocess.PIPE, text=True).stdout.strip()
        properties = UnitBroker.show("LoadState", "ActiveState", "FragmentPath")
        self.measure("systemd: the installed unit", {**properties, "is-enabled": enabled, "dependencies": sorted(wanted)})
        check(enabled == "enabled", f"systemctl is-enabled: {enabled}")
        check(properties["LoadState"] == "loaded" and properties["ActiveState"] == "inactive", f"unit {properties}")
        starter.join(90)
        check(not vm_errors and self.vm is not None, f"inner QEMU: {vm_errors}")
        return (f"{os.path.basename(debs[-1])} installed in {(time.monotonic() - started):.1f} s (Depends: {', '.join(sorted(wanted))}); "
                f"{properties['FragmentPath']} enabled, inactive")

    def systemd_start(self):
        """systemctl start returns once the broker sent READY=1 (Type=notify); the
        sandboxed broker takes the trigger over."""
        check(self.vm is not None, "no inner QEMU from the previous scenario")
        self.broker = UnitBroker(self.vm)
        started = time.monotonic()
        systemctl("start", UnitBroker.unit)
        self.timing("systemd: systemctl start (to READY=1)", (time.monotonic() - started) * 1000)
        properties = self.broker.show("ActiveState", "SubState", "Type", "MainPID", "NRestarts", "StatusText",
                                      "WatchdogUSec", "Restart", "ExecMainStartTimestampMonotonic")
        self.measure("systemd: after systemctl start", properties)
        check((properties["ActiveState"], properties["SubState"]) == ("active", "running"),
              f"{properties['ActiveState']} ({properties['SubState']}), expected active (running)")
        check(properties["Type"] == "notify", f"Type={properties['Type']}")
        self.broker.main_pid = properties["MainPID"]
        self.broker.connect()
        entry = self.broker.wait_device(lambda e: "takeover" in e.get("sources", []), 30, "hostdev0 with source takeover")
        self.timing("systemd: start -> takeover active", (time.monotonic() - started) * 1000)
        self.measure("systemd: query-vfio-devices after start", entry)
        watch = self.broker.wait_vm(lambda vm: vm.get("link-reset-watch"), 30, "inner with link-reset-watch")
        self.measure("systemd: query-broker's inner after start", watch)
        # Debian's kernels keep perf_event_paranoid at 3, where perf_event_open also wants
        # CAP_SYS_ADMIN (a Debian patch), which the unit grants.
        with open("/proc/sys/kernel/perf_event_paranoid") as file:
            paranoid = file.read().strip()
        tracepoint = [m for m in journal_messages(journal()) if "ras:aer_event" in m]
        self.measure("systemd: AER tracepoint at perf_event_paranoid " + paranoid, tracepoint)
        check(any("announced by the kernel's ras:aer_event tracepoint" in m for m in tracepoint),
              f"in the sandbox at perf_event_paranoid {paranoid}: {tracepoint}")
        return f"active (running), status {properties['StatusText']!r}; ras:aer_event tracepoint in use; sources {entry.get('sources')}, error-trigger {entry.get('error-trigger')}"

    def systemd_non_fatal(self):
        """In the sandbox the broker still hears the ERR eventfd, reads the AER counters
        and the recovery uevent: a non-fatal error becomes its event and the VM runs."""
        check(self.broker is not None and self.broker.client is not None, "no broker from the previous scenario")
        client = self.broker.client
        client.command("cont")
        counted = self.broker.device()["counters"]["non-fatal"]
        sent, answer, recovered, changes = self.host_error(CMPLT_TO)
        arrival, event = client.wait_event(event_named("VFIO_PCI_ERROR"), 15, since=sent)
        self.timing("systemd: non-fatal: injection request -> VFIO_PCI_ERROR at a broker client", (arrival - sent) * 1000)
        self.measure("systemd: non-fatal VFIO_PCI_ERROR", event["data"])
        _, recovery = client.wait_event(event_named("VFIO_HOST_RECOVERY"), 15, since=sent)
        data = event["data"]
        check(data.get("severity") == "non-fatal", f"severity {data.get('severity')}, expected non-fatal")
        check("CmpltTO" in data.get("errors", []), f"errors {data.get('errors')} lack CmpltTO")
        entry = self.broker.wait_device(lambda e: e["counters"]["non-fatal"] > counted, 10, "the non-fatal count moved")
        client.poll_events(0.5)
        check(self.vm.status() == "running", f"inner VM is {self.vm.status()} after a non-fatal error")
        check("Unrecoverable error" not in self.vm.log_text(), "QEMU's own ERR notifier fired")
        return (f"{data.get('severity')} {data.get('errors')} source {data.get('source')}; VFIO_HOST_RECOVERY "
                f"{recovery['data'].get('result')} (uevent); non-fatal count {counted} -> {entry['counters']['non-fatal']}; VM running")

    def systemd_reload(self):
        """systemctl reload (SIGHUP) re-reads the config: a VM added there is served."""
        check(self.broker is not None and self.broker.client is not None, "no broker from the previous scenario")
        UnitBroker(self.vm, extra=f'\n[[vm]]\nname = "spare"\nqmp = "{RUN}/spare.qmp"\n')
        started = time.monotonic()
        systemctl("reload", UnitBroker.unit)
        deadline = Deadline(15)
        names = []
        while not deadline.passed():
            names = [vm["name"] for vm in self.broker.client.command("query-broker")["vms"]]
            if "spare" in names:
                break
            time.sleep(0.2)
        self.timing("systemd: systemctl reload -> the added VM in query-broker", (time.monotonic() - started) * 1000)
        properties = self.broker.show("ActiveState", "SubState", "MainPID", "NRestarts")
        check("spare" in names, f"query-broker lists {names} after the reload")
        check(os.path.exists(f"{UnitBroker.socket_dir}/spare.qmp"), "no socket for the added VM")
        check(properties["MainPID"] == self.broker.main_pid, f"MainPID {properties['MainPID']}, was {self.broker.main_pid}")
        check((properties["ActiveState"], properties["SubState"]) == ("active", "running"), f"after reload: {properties}")
        return f"query-broker lists {names}; the inner client stayed connected; MainPID kept"

    def systemd_watchdog(self):
        """Past WatchdogSec the broker, pinging, is still the same running process."""
        check(self.broker is not None, "no broker from the previous scenario")
        properties = self.broker.show("WatchdogUSec", "ExecMainStartTimestampMonotonic")
        watchdog = parse_seconds(properties["WatchdogUSec"])
        check(watchdog > 0, f"WatchdogUSec={properties['WatchdogUSec']}: no watchdog")
        begun = int(properties["ExecMainStartTimestampMonotonic"]) / 1e6
        waited = max(0.0, begun + watchdog + 3 - time.clock_gettime(time.CLOCK_MONOTONIC))
        time.sleep(waited)
        properties = self.broker.show("ActiveState", "SubState", "MainPID", "NRestarts", "WatchdogTimestampMonotonic", "Result")
        self.measure("systemd: past WatchdogSec", properties)
        running = time.clock_gettime(time.CLOCK_MONOTONIC) - begun
        check((properties["ActiveState"], properties["SubState"]) == ("active", "running"), f"{properties}")
        check(properties["NRestarts"] == "0" and properties["MainPID"] == self.broker.main_pid, f"{properties}")
        last_ping = int(properties["WatchdogTimestampMonotonic"] or 0) / 1e6
        check(last_ping > begun, "no watchdog ping recorded")
        return f"running {running:.0f} s (WatchdogSec {watchdog:.0f} s, waited {waited:.0f} s), NRestarts 0, last ping {running - (last_ping - begun):.1f} s ago"

    def systemd_kill_restart(self):
        """SIGKILL of the main process: systemd restarts it, and the new broker takes the
        trigger over again and keeps the fatal flag."""
        check(self.broker is not None and self.broker.client is not None, "no broker from the previous scenario")
        client = self.broker.client
        sent, answer, recovered, changes = self.host_error("DLP")
        _, event = client.wait_event(event_named("VFIO_PCI_ERROR", severity="fatal"), 15, since=sent)
        check(event["data"].get("link-error") is True, f"link-error {event['data'].get('link-error')}, expected true")
        before = self.broker.show("MainPID", "NRestarts")
        cursor = journal("-n", "1")
        self.broker.close()
        killed = time.monotonic()
        systemctl("kill", "-s", "KILL", UnitBroker.unit)
        properties = self.broker.wait_restarted(before, 60)
        self.timing("systemd: SIGKILL -> restarted, active (running)", (time.monotonic() - killed) * 1000)
        self.measure("systemd: after SIGKILL", properties)
        self.broker.main_pid = properties["MainPID"]
        self.broker.connect()
        entry = self.broker.wait_device(lambda e: "takeover" in e.get("sources", []), 30, "hostdev0 with source takeover")
        self.timing("systemd: SIGKILL -> takeover active again", (time.monotonic() - killed) * 1000)
        self.measure("systemd: query-vfio-devices after the restart", entry)
        check(entry.get("link-error") is True, f"link-error {entry.get('link-error')} after the restart, expected true")
        since = ["--after-cursor", cursor[-1]["__CURSOR"]] if cursor else []
        tracepoint = [m for m in journal_messages(journal(*since)) if "ras:aer_event" in m]
        self.measure("systemd: AER tracepoint after the restart", tracepoint)
        check(any("announced by the kernel's ras:aer_event tracepoint" in m for m in tracepoint),
              f"after the restart: {tracepoint}")
        return (f"{properties['Result']}: MainPID {before['MainPID']} -> {properties['MainPID']}, NRestarts {properties['NRestarts']}; sources {entry.get('sources')}, link-error true; "
                f"ras:aer_event tracepoint in use")

    def systemd_sigterm(self):
        """A clean exit that systemctl did not ask for (kill -TERM of the main process):
        the broker disarms the trigger and exits 0, and Restart=always starts it again."""
        check(self.broker is not None and self.broker.client is not None, "no broker from the previous scenario")
        before = self.broker.show("MainPID", "NRestarts")
        self.broker.close()
        killed = time.monotonic()
        os.kill(int(before["MainPID"]), signal.SIGTERM)
        properties = self.broker.wait_restarted(before, 60)
        self.timing("systemd: kill -TERM -> restarted, active (running)", (time.monotonic() - killed) * 1000)
        self.measure("systemd: after kill -TERM of the main process", properties)
        self.broker.main_pid = properties["MainPID"]
        self.broker.connect()
        entry = self.broker.wait_device(lambda e: "takeover" in e.get("sources", []), 30, "hostdev0 with source takeover")
        self.timing("systemd: kill -TERM -> takeover active again", (time.monotonic() - killed) * 1000)
        return (f"exit {properties['ExecMainStatus']} ({properties['Result']}), restarted: MainPID {before['MainPID']} -> "
                f"{properties['MainPID']}, NRestarts {properties['NRestarts']}; sources {entry.get('sources')}")

    def systemd_stop(self):
        """systemctl stop: the broker undoes QEMU's tracing and releases the trigger."""
        check(self.broker is not None and self.broker.client is not None, "no broker from the previous scenario")
        before = self.vm.qmp.command("trace-event-get-state", {"name": "pci_cfg_write"})
        self.broker.close()
        stopped = time.monotonic()
        cursor = journal("-n", "1")
        systemctl("stop", UnitBroker.unit)
        self.timing("systemd: systemctl stop", (time.monotonic() - stopped) * 1000)
        properties = self.broker.show("ActiveState", "SubState", "Result", "MainPID")
        after = self.vm.qmp.command("trace-event-get-state", {"name": "pci_cfg_write"})
        self.measure("systemd: pci_cfg_write before and after the stop", [before, after])
        since = ["--after-cursor", cursor[-1]["__CURSOR"]] if cursor else []
        messages = journal_messages(journal(*since))
        self.measure("systemd: the broker's journal during the stop", messages[-15:])
        check(properties["ActiveState"] == "inactive" and properties["Result"] == "success", f"after stop: {properties}")
        check(any(e.get("state") == "enabled" for e in before), f"pci_cfg_write was not traced while attached: {before}")
        check(after and all(e.get("state") == "disabled" for e in after), f"pci_cfg_write after the stop: {after}")
        check(any("released the vfio error trigger" in m for m in messages), "no 'released the vfio error trigger' in the journal")
        check(self.vm.status() == "running", f"inner VM is {self.vm.status()} after the broker stopped")
        return f"inactive (success); pci_cfg_write {before[0]['state']} -> {after[0]['state']}; trigger released; VM running"

    def systemd_journal(self):
        """The unit's journal carries the broker's fields (journald's native protocol)."""
        entries = journal()
        with open(f"{RESULTS}/journal-qmp-broker.json", "w") as file:
            for entry in entries:
                file.write(json.dumps(entry) + "\n")
        fields = {}
        for entry in entries:
            for name in ("VM", "DEVICE"):
                if name in entry:
                    fields.setdefault(name, entry)
        example = fields.get("DEVICE") or fields.get("VM") or {}
        self.measure("systemd: a journal entry with the broker's fields",
                     {k: v for k, v in example.items() if not k.startswith("__") and not k.startswith("_SOURCE")})
        check("VM" in fields, f"no entry with VM= among {len(entries)}")
        check("DEVICE" in fields, f"no entry with DEVICE= among {len(entries)}")
        check(fields["VM"].get("_SYSTEMD_UNIT") == UnitBroker.unit, f"_SYSTEMD_UNIT {fields['VM'].get('_SYSTEMD_UNIT')}")
        check(fields["VM"].get("_TRANSPORT") == "journal", f"_TRANSPORT {fields['VM'].get('_TRANSPORT')}: not journald's native protocol")
        return (f"{len(entries)} entries; VM={fields['VM'].get('VM')} in {fields['VM'].get('MESSAGE')!r}; "
                f"DEVICE={fields['DEVICE'].get('DEVICE')} in {fields['DEVICE'].get('MESSAGE')!r}")

    def main(self):
        self.control.send("ready", uptime=float(open("/proc/uptime").read().split()[0]))
        plan = []
        if SRIOV:
            plan.append(("0 SR-IOV: igb PF on igb, VF 0 on vfio-pci, VF 1 " + ("on igbvf" if CONFIG.endswith("igbvf") else "on no driver"),
                         self.sriov_setup))
        if SYSTEMD:
            plan += [("s0 dpkg -i the package: unit enabled, not started", self.systemd_install),
                     ("s1 systemctl start: active (running) through READY=1; sandboxed broker takes the trigger over", self.systemd_start),
                     ("s2 sandbox: non-fatal at rp1 -> VFIO_PCI_ERROR (eventfd, AER counters, uevent), VM runs", self.systemd_non_fatal),
                     ("s3 systemctl reload: an added VM is served", self.systemd_reload),
                     ("s4 watchdog: past WatchdogSec still active, NRestarts 0", self.systemd_watchdog),
                     ("s4b kill -TERM of the main process: Restart=always starts it again", self.systemd_sigterm),
                     ("s5 fatal, then SIGKILL: systemd restarts it, takeover and flag back", self.systemd_kill_restart),
                     ("s6 systemctl stop: tracing undone, trigger released", self.systemd_stop),
                     ("s7 journalctl -u qmp-broker -o json: VM= and DEVICE= fields", self.systemd_journal)]
        elif CONFIG.endswith("nodriver"):
            plan += [("1 fatal with the other VF on no driver: host recovery failed, flag set", self.sriov_failed_recovery),
                     ("2 guest SBR -> stop; cont keeps the flag after the failed recovery", self.sriov_flag_stays)]
        else:
            plan += [("1 control: non-fatal at rp1 stops stock QEMU (internal-error)", self.control_scenario),
                     ("2 broker takeover: non-fatal reported, VM keeps running", self.broker_non_fatal)]
            if CORRECTABLE_REACHES_HOST:
                plan.append(("2c correctable RxErr at rp1 -> VFIO_PCI_ERROR correctable", self.broker_correctable))
            plan += [("3 fatal: flagged, forwarded; guest SBR -> VFIO_LINK_RESET stop + STOP", self.broker_fatal),
                     (f"3b late flagged guest SBR past 3 trace checks ({LINK_RESET_CHECK_MS} ms) -> stop", self.broker_late_reset)]
            plan.append(("4 broker SIGKILL + restart: takeover again, flag kept", self.broker_restart))
            if SRIOV:
                # Last before the unbind: once aer_inject has injected, its config ops shadow the
                # root port's AER registers and errors QEMU raises at rp1 no longer reach the kernel.
                plan.append(("4p non-fatal reported by the PF (aer_inject) -> VFIO_PCI_ERROR CmpltTO naming the PF, VM runs",
                             self.sriov_pf_reported))
                plan.append(("4q non-fatal reported by the other VF (aer_inject) -> VFIO_PCI_ERROR naming it, VM runs",
                             lambda: self.sriov_pf_reported(SIBLINGS[1], "other VF")))
            plan += [("5 host unbind: REQ stays with QEMU, DEVICE_DELETED, unbind completes", self.host_unbind)]
        self.control.send("plan", count=len(plan))
        self.control.log(f"configuration {CONFIG}, inner QEMU {INNER_QEMU}, kernel {os.uname().release}")
        for name, body in plan:
            self.scenario(name, body)
        with open(f"{RESULTS}/measurements.json", "w") as file:
            json.dump(self.measurements, file, indent=2)
        if CONFIG.endswith("nodriver"):
            # The VF is gone: closing it makes the kernel wait ~70 s for its FLR, in the
            # closing process. Kill both and power off without waiting for them.
            for thing in (self.broker, self.vm):
                if thing is not None:
                    thing.process.kill()
        else:
            for name in ("broker", "vm"):
                thing = getattr(self, name)
                if thing is not None:
                    thing.stop()
        self.control.send("done", passed=self.passed, failed=self.failed)
        return 0 if self.failed == 0 else 1


if __name__ == "__main__":
    os.makedirs(RUN, exist_ok=True)
    sys.exit(Run().main())
