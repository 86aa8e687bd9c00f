#!/usr/bin/env python3
"""qmp-broker beside a real libvirt (Debian 12's 9.0) and a real QEMU: the broker on a
second monitor of a libvirt domain, with the README's command line and no
`trace-log-owner`. Run as root; `make test` runs it (`make libvirt-e2e` alone).

It starts `virtlogd` and `libvirtd` when they are not running (PID 1 is not systemd
here) and stops only what it started. The domain is TCG q35, 64 MiB, no disk, SeaBIOS
without a reboot timeout; a `pcie-root-port` (libvirt's `pci.1`, pinned at 00:1c.0) with
a `virtio-rng-pci,aer=on` endpoint behind it added as a JSON `-device` (SPEC 11); the
broker's monitor and a qtest socket added with `<qemu:commandline>`. Host errors come from
`x-vfio-inject-error` on a device whose fake sysfs host exists; the guest's Secondary Bus
Reset is written through qtest into the root port's ECAM config space (the firmware has
mapped ECAM by then).

Checks, through the broker and through `virsh`:
1. the watch is intact with no trace-log-owner (the log is given to libvirt-qemu);
2. a flagged guest SBR stops the domain: `virsh domstate --reason` says paused (unknown);
3. `virsh resume` resumes it and the broker's client sees RESUME;
4. a libvirtd restart does not disturb the broker's client (only when this test started
   libvirtd: it never restarts a daemon it did not start);
5. an operator's trace (`virsh qemu-monitor-command`) reaches libvirt's log
   /var/log/libvirt/qemu/NAME.log while the broker is attached;
6. `virsh destroy` + `start` re-attaches the broker (the watch is intact again);
7. after the broker's SIGTERM its events are off in QEMU and QEMU logs to its stderr
   again: an operator's trace line shows in libvirt's log, not in the broker's file.

Prints one line per check and ends with `libvirt-e2e: N passed, M failed`.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "HostE2E"))
from e2elib import Deadline, Failure, QMPClient, connect_unix, event_named  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BROKER = os.environ.get("QMP_BROKER_BIN", os.path.join(ROOT, ".build", "debug", "qmp-broker"))
LIBVIRT_SOCKET = "/run/libvirt/libvirt-sock"
VIRTLOGD_SOCKET = "/run/libvirt/virtlogd-sock"
# The root port's guest address: libvirt puts controller pci.1 where the XML says.
ROOT_PORT_SLOT = 0x1C
ECAM_BASE = 0xB0000000  # q35's MMCONFIG window as SeaBIOS maps it
HOST = "0000:3b:00.0"
WATCHED_EVENTS = ["pci_cfg_write", "vfio_pci_hot_reset", "vfio_pci_hot_reset_result",
                  "resettable_phase_enter_begin", "resettable_phase_exit_end", "monitor_qmp_cmd_in_band"]

results = []


def log(text):
    print(text, flush=True)


def check(name, condition, detail=""):
    results.append((name, bool(condition)))
    log(f"{'PASS' if condition else 'FAIL'}: {name}" + ("" if condition else f" ({detail})"))
    return bool(condition)


def run(*command, check_rc=True, timeout=60):
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check_rc and completed.returncode != 0:
        raise Failure(f"{' '.join(command)}: exit {completed.returncode}: {completed.stderr.strip()}")
    return completed.stdout.strip()


def virsh(*arguments, check_rc=True, timeout=60):
    return run("virsh", "-c", "qemu:///system", *arguments, check_rc=check_rc, timeout=timeout)


def socket_answers(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


class Daemons:
    """virtlogd and libvirtd: started here (in the foreground, as our children) when
    their socket does not answer, and stopped at the end only if started here."""

    def __init__(self, directory):
        self.directory = directory
        self.started = {}

    def ensure(self, name, sock, timeout=60):
        if socket_answers(sock):
            return
        output = open(os.path.join(self.directory, f"{name}.out"), "wb")
        self.started[name] = subprocess.Popen([name], stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = Deadline(timeout)
        while not socket_answers(sock):
            if self.started[name].poll() is not None or deadline.passed():
                raise Failure(f"{name} did not come up: {open(output.name).read()[-2000:]}")
            time.sleep(0.05)

    def owns(self, name):
        return name in self.started

    def stop(self, name, timeout=30):
        process = self.started.pop(name, None)
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self):
        for name in ["libvirtd", "virtlogd"]:
            self.stop(name)


def domain_xml(name, vmm_directory):
    return f"""<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <bios rebootTimeout='-1'/>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' index='1' model='pcie-root-port'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x{ROOT_PORT_SLOT:02x}' function='0x0'/>
    </controller>
    <!-- Otherwise libvirt adds a qemu-xhci controller and puts it on pci.1, beside dev0. -->
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-qmp'/>
    <qemu:arg value='unix:{vmm_directory}/vmm.qmp,server=on,wait=off'/>
    <qemu:arg value='-qtest'/>
    <qemu:arg value='unix:{vmm_directory}/qtest.sock,server=on,wait=off'/>
    <qemu:arg value='-qtest-log'/>
    <qemu:arg value='none'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='{{"driver":"virtio-rng-pci","bus":"pci.1","aer":true,"id":"dev0"}}'/>
  </qemu:commandline>
</domain>
"""


class QTest:
    def __init__(self, path):
        self.sock = connect_unix(path, 30)
        self.buffer = b""

    def command(self, line, timeout=10):
        self.sock.sendall((line + "\n").encode())
        deadline = Deadline(timeout)
        self.sock.settimeout(timeout)
        while b"\n" not in self.buffer:
            if deadline.passed():
                raise Failure(f"qtest {line}: no answer")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Failure("qtest connection closed")
            self.buffer += chunk
        answer, self.buffer = self.buffer.split(b"\n", 1)
        if not answer.startswith(b"OK"):
            raise Failure(f"qtest {line}: {answer!r}")
        return answer.decode()

    def secondary_bus_reset(self):
        """The guest sets and releases SBR on the root port (Bridge Control 0x3e, bit 0x40)
        with one ECAM write each, atomic against the running firmware."""
        address = ECAM_BASE | ROOT_PORT_SLOT << 15 | 0x3E
        self.command(f"writew 0x{address:x} 0x40")
        self.command(f"writew 0x{address:x} 0x0")

    def close(self):
        self.sock.close()


def write_fake_sysfs(root):
    """The host side of the watched device: its AER counters, all zero (as FakeSysfsTree)."""
    directory = os.path.join(root, "bus", "pci", "devices", HOST)
    os.makedirs(directory)
    correctable = ["RxErr", "BadTLP", "BadDLLP", "Rollover", "Timeout", "NonFatalErr", "CorrIntErr", "HeaderOF"]
    uncorrectable = ["Undefined", "DLP", "SDES", "TLP", "FCP", "CmpltTO", "CmpltAbrt", "UnxCmplt", "RxOF", "MalfTLP",
                     "ECRC", "UnsupReq", "ACSViol", "UncorrIntErr", "BlockedTLP", "AtomicOpBlocked", "TLPBlockedErr",
                     "PoisonTLPBlocked"]
    for name, names, total in [("aer_dev_correctable", correctable, "TOTAL_ERR_COR"),
                               ("aer_dev_nonfatal", uncorrectable, "TOTAL_ERR_NONFATAL"),
                               ("aer_dev_fatal", uncorrectable, "TOTAL_ERR_FATAL")]:
        with open(os.path.join(directory, name), "w") as handle:
            handle.write("".join(f"{n} 0\n" for n in names) + f"{total} 0\n")


class Broker:
    def __init__(self, directory, config):
        self.log_path = os.path.join(directory, "broker.log")
        self.process = subprocess.Popen([BROKER, "run", "--config", config, "--log-level", "info"],
                                        stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()


def vm_status(client):
    return client.command("query-broker")["vms"][0]


def wait_for_watch(client, intact=True, timeout=45):
    deadline = Deadline(timeout)
    status = {}
    while not deadline.passed():
        status = vm_status(client)
        if status.get("link-reset-watch") == intact:
            return status
        time.sleep(0.1)
    raise Failure(f"link-reset-watch never became {intact}: {status}")


def wait_for_dev0_numbered(client, timeout=60):
    """After the firmware numbered the root port's bus, QEMU lists dev0 behind it; a
    guest link reset before that races SeaBIOS's own config cycles."""
    deadline = Deadline(timeout)
    while not deadline.passed():
        if '"qdev_id": "dev0"' in str(client.command("query-pci")).replace("'", '"'):
            return
        time.sleep(0.1)
    raise Failure("the firmware never numbered dev0's bus")


def monitor_json(name, command):
    """A QMP command through libvirt (`virsh qemu-monitor-command`, as an operator does)."""
    return virsh("qemu-monitor-command", name, command)


def operator_trace(name, marker):
    """The operator's own trace: `handle_qmp_command` switched on through libvirt's
    monitor, one command carrying `marker` (QEMU traces the request with its arguments),
    and the event off again."""
    virsh("qemu-monitor-command", name, "--hmp", "trace-event handle_qmp_command on")
    monitor_json(name, '{"execute":"qom-list","arguments":{"path":"/machine/%s"}}' % marker)
    virsh("qemu-monitor-command", name, "--hmp", "trace-event handle_qmp_command off")


def file_contains(path, text, timeout):
    deadline = Deadline(timeout)
    while True:
        try:
            with open(path, errors="replace") as handle:
                if text in handle.read():
                    return True
        except FileNotFoundError:
            pass
        if deadline.passed():
            return False
        time.sleep(0.05)


def read(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def main():
    if os.geteuid() != 0:
        log("libvirt-e2e: needs root (libvirtd, virtlogd, QEMU as libvirt-qemu)")
        return 1
    for tool in ["virsh", "libvirtd", "virtlogd"]:
        if shutil.which(tool) is None:
            log(f"libvirt-e2e: {tool} is missing (scripts/setup.sh installs libvirt-daemon-system and libvirt-clients)")
            log("libvirt-e2e: 0 passed, 1 failed")
            return 1
    if not os.access(BROKER, os.X_OK):
        log(f"libvirt-e2e: {BROKER} is not built (swift build)")
        log("libvirt-e2e: 0 passed, 1 failed")
        return 1

    began = time.monotonic()
    qemu_user = pwd.getpwnam("libvirt-qemu")
    name = f"qmpb-e2e-{os.getpid()}"
    # /run is shared with QEMU's private mount namespace; only /dev is private (SPEC 11).
    work = f"/run/qmp-broker-libvirt-e2e.{os.getpid()}"
    vmm_directory = os.path.join(work, "vmm")      # QEMU (libvirt-qemu) creates its sockets here
    broker_directory = os.path.join(work, "broker")  # the broker's sockets and NAME.trace.log
    os.makedirs(work, mode=0o755)
    os.makedirs(vmm_directory, mode=0o750)
    os.chown(vmm_directory, qemu_user.pw_uid, qemu_user.pw_gid)
    os.makedirs(broker_directory, mode=0o755)
    os.chmod(work, 0o755)
    write_fake_sysfs(os.path.join(work, "sys"))
    config = os.path.join(work, "broker.toml")
    with open(config, "w") as handle:
        # The README's deployment: no trace-log-owner.
        handle.write(f"""socket-dir = "{broker_directory}"
state-dir = "{work}/state"
sysfs-root = "{work}/sys"
sysfs-poll-ms = 0
allow-inject = true

[[vm]]
name = "{name}"
qmp = "{vmm_directory}/vmm.qmp"

[[vm.device]]
id = "dev0"
host = "{HOST}"
policy = "forward"
""")
    libvirt_log = f"/var/log/libvirt/qemu/{name}.log"
    trace_log = os.path.join(broker_directory, f"{name}.trace.log")
    daemons = Daemons(work)
    broker = None
    client = None
    qtest = None
    defined = False
    try:
        daemons.ensure("virtlogd", VIRTLOGD_SOCKET)
        daemons.ensure("libvirtd", LIBVIRT_SOCKET)
        log(f"libvirt-e2e: {run('virsh', '--version')} (virtlogd {'started here' if daemons.owns('virtlogd') else 'running'},"
            f" libvirtd {'started here' if daemons.owns('libvirtd') else 'running'})")
        xml = os.path.join(work, "domain.xml")
        with open(xml, "w") as handle:
            handle.write(domain_xml(name, vmm_directory))
        virsh("define", xml)
        defined = True
        started = time.monotonic()
        virsh("start", name, timeout=120)
        log(f"domain {name} started in {time.monotonic() - started:.1f} s")

        broker = Broker(work, config)
        client = QMPClient(os.path.join(broker_directory, f"{name}.qmp"), "broker", timeout=30)
        client.command("broker-stay-connected", {"enable": True})

        # 1. The watch is intact with no trace-log-owner: the log belongs to libvirt-qemu.
        attached = time.monotonic()
        try:
            status = wait_for_watch(client)
            log(f"watch intact {time.monotonic() - attached:.2f} s after the broker's client was greeted")
            owner = os.stat(trace_log)
            check("the watch is intact with no trace-log-owner (QEMU as libvirt-qemu writes the broker's file)",
                  status.get("link-reset-watch") is True and owner.st_uid == qemu_user.pw_uid
                  and owner.st_mode & 0o777 == 0o600,
                  f"{status} owner {owner.st_uid}:{owner.st_gid} mode {oct(owner.st_mode & 0o777)}")
        except Failure as error:
            check("the watch is intact with no trace-log-owner", False, f"{error}; {vm_status(client)}; {broker.log()[-3000:]}")

        # 2. A flagged guest SBR stops the domain; libvirt shows it as paused (unknown).
        wait_for_dev0_numbered(client)
        since = time.monotonic()
        client.command("x-vfio-inject-error", {"device": "dev0", "severity": "fatal"})
        _, error_event = client.wait_event(event_named("VFIO_PCI_ERROR"), 10, since)
        qtest = QTest(os.path.join(vmm_directory, "qtest.sock"))
        since = time.monotonic()
        qtest.secondary_bus_reset()
        try:
            _, reset = client.wait_event(event_named("VFIO_LINK_RESET"), 10, since)
            stop_at, _ = client.wait_event(event_named("STOP"), 10, since)
            log(f"guest SBR → STOP at the broker's client: {(stop_at - since) * 1000:.1f} ms")
            deadline = Deadline(10)
            state = virsh("domstate", "--reason", name)
            while state != "paused (unknown)" and not deadline.passed():
                time.sleep(0.05)
                state = virsh("domstate", "--reason", name)
            check("a flagged guest SBR stops the domain: virsh domstate --reason says paused (unknown)",
                  error_event["data"].get("link-error") is True and reset["data"].get("action") == "stop"
                  and state == "paused (unknown)", f"{error_event} {reset} {state!r}")
        except Failure as error:
            check("a flagged guest SBR stops the domain", False, f"{error}; {broker.log()[-3000:]}")

        # 3. virsh resume: the broker's client sees RESUME, the flag is cleared.
        since = time.monotonic()
        virsh("resume", name)
        try:
            client.wait_event(event_named("RESUME"), 10, since)
            _, cleared = client.wait_event(event_named("VFIO_LINK_ERROR_CLEARED"), 10, since)
            check("virsh resume resumes the domain and the broker sees RESUME (and clears the flag)",
                  virsh("domstate", "--reason", name).startswith("running")
                  and client.command("query-status")["status"] == "running", f"{cleared}")
        except Failure as error:
            check("virsh resume resumes the domain and the broker sees RESUME", False, str(error))

        # 4. A libvirtd restart leaves the broker's client alone.
        if daemons.owns("libvirtd"):
            before = len(client.events)
            daemons.stop("libvirtd")
            down = time.monotonic()
            daemons.ensure("libvirtd", LIBVIRT_SOCKET)
            state = virsh("domstate", "--reason", name)
            log(f"libvirtd restarted in {time.monotonic() - down:.1f} s")
            client.poll_events(0.2)
            names = [event["event"] for _, event in client.events[before:]]
            check("a libvirtd restart does not disturb the broker's client",
                  client.command("query-status")["status"] == "running" and state.startswith("running")
                  and "BROKER_VMM_DISCONNECTED" not in names and vm_status(client).get("link-reset-watch") is True,
                  f"{state} {names}")
        else:
            log("SKIP: libvirtd restart (libvirtd was running before this test; it restarts only what it started)")

        # 5. An operator's own trace reaches libvirt's log while the broker is attached.
        operator_trace(name, "operator-while-attached")
        seen = file_contains(libvirt_log, "operator-while-attached", 5)
        check("an operator's trace reaches libvirt's log while the broker is attached", seen,
              f"not in {libvirt_log}; broker's file has it: {'operator-while-attached' in read(trace_log)};"
              f" tail: {read(libvirt_log)[-600:]}")
        # ... and the broker's own lines do not: the guest's SBR is in its file only.
        check("the broker's own trace lines stay out of libvirt's log",
              "@0x3e <- 0x40" in read(trace_log) and "pci_cfg_write" not in read(libvirt_log),
              f"libvirt's log: {read(libvirt_log)[-600:]}")

        # 6. virsh destroy + start: the broker attaches again (a new QEMU, a new process).
        qtest.close()
        qtest = None
        since = time.monotonic()
        virsh("destroy", name)
        try:
            client.wait_event(event_named("BROKER_VMM_DISCONNECTED"), 20, since)
            virsh("start", name, timeout=120)
            restarted = time.monotonic()
            client.wait_event(event_named("BROKER_VMM_CONNECTED"), 30, since)
            status = wait_for_watch(client)
            log(f"re-attached, watch intact {time.monotonic() - restarted:.2f} s after virsh start returned")
            check("virsh destroy + start re-attaches the broker (watch intact again)",
                  status.get("link-reset-watch") is True and client.command("query-status")["status"] == "running",
                  f"{status}")
        except Failure as error:
            check("virsh destroy + start re-attaches the broker", False, f"{error}; {broker.log()[-3000:]}")

        # 7. SIGTERM: QEMU's tracing is off again and its log is back on its stderr.
        stopping = time.monotonic()
        broker.process.send_signal(signal.SIGTERM)
        status = broker.process.wait(30)
        log(f"broker exited {status} {(time.monotonic() - stopping) * 1000:.0f} ms after SIGTERM")
        client.close()
        client = None
        states = {}
        for event in WATCHED_EVENTS:
            reply = monitor_json(name, '{"execute":"trace-event-get-state","arguments":{"name":"%s"}}' % event)
            states[event] = "disabled" in reply
        check("after the broker's SIGTERM the events it switched on are off (exit status 0)",
              status == 0 and all(states.values()), f"exit {status}; disabled: {states}")
        operator_trace(name, "operator-after-sigterm")
        seen = file_contains(libvirt_log, "operator-after-sigterm", 5)
        check("after SIGTERM QEMU logs to its stderr again: an operator's trace is in libvirt's log",
              seen and "operator-after-sigterm" not in read(trace_log),
              f"not in {libvirt_log}: {read(libvirt_log)[-800:]}; broker log: {broker.log()[-1500:]}")
    except Failure as error:
        check("the run went through", False, str(error))
    finally:
        if client is not None:
            client.close()
        if qtest is not None:
            qtest.close()
        if broker is not None and broker.process.poll() is None:
            broker.process.kill()
            broker.process.wait()
        if defined:
            virsh("destroy", name, check_rc=False)
            virsh("undefine", name, check_rc=False)
        daemons.stop_all()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)
            if defined:
                for path in [libvirt_log] + [f"{libvirt_log}.{n}" for n in range(1, 4)]:
                    if os.path.exists(path):
                        os.unlink(path)
        else:
            log(f"kept {work}")

    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    log(f"libvirt-e2e: {passed} passed, {failed} failed ({time.monotonic() - began:.0f} s)")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
