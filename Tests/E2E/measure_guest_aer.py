#!/usr/bin/env python3
"""Re-measures the facts in Tests/E2E/README.md against a real guest.

Boots the e2e guest (scripts/boot-guest.sh --nic), enables the pci_cfg_write
trace over QMP exactly as the broker does, injects AER errors with HMP
`pcie_aer_inject_error`, resets the VM (QMP system_reset, guest `reboot -f`)
and prints guest console lines, trace lines and delays. Python stdlib only.

    Tests/E2E/measure_guest_aer.py [--kernel vmlinux|vmlinuz] [--repeat N] [--workdir DIR]

Times are host wall-clock: injection = just before the HMP command is sent;
console lines = when they arrive on the serial socket; trace lines = QEMU's own
timestamp (`-msg timestamp=on` prefixes them with `PID@SECONDS.MICROS:`).
"""
import argparse, json, os, re, socket, statistics, subprocess, sys, tempfile, threading, time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRACE_RE = re.compile(r'^(?:\d+@(\d+\.\d+):)?pci_cfg_write (\S+) ([0-9a-f]{2}:[0-9a-f]{2}\.\d) @0x([0-9a-f]+) <- 0x([0-9a-f]+)$')


def connect(path, timeout=10):
    deadline = time.time() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)


class Console:
    """The guest's ttyS0 on a unix socket; every line is stamped on arrival."""

    def __init__(self, path):
        self.sock = connect(path)
        self.lines = []  # (host time, text)
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b''
        while data := self.sock.recv(65536):
            buf += data
            *complete, buf = buf.split(b'\n')
            now = time.time()
            with self.cv:
                self.lines += [(now, l.decode(errors='replace').rstrip('\r')) for l in complete]
                self.cv.notify_all()

    def type(self, text):
        self.sock.sendall(text.encode())

    def wait_for(self, pattern, start=0, timeout=60):
        """Index of the first line at or after `start` that matches `pattern`."""
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for i in range(start, len(self.lines)):
                    if re.search(pattern, self.lines[i][1]):
                        return i
                if not self.cv.wait(max(0, deadline - time.time())):
                    raise TimeoutError(f'console: no line matching {pattern!r}')


class QMP:
    """Minimal QMP client: in-band commands in order, events stamped on arrival."""

    def __init__(self, path):
        self.file = connect(path).makefile('rwb', buffering=0)
        self.greeting = json.loads(self.file.readline())
        self.events, self.replies = [], []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.cmd('qmp_capabilities')

    def _read(self):
        for raw in self.file:
            msg = json.loads(raw)
            with self.cv:
                (self.events if 'event' in msg else self.replies).append((time.time(), msg))
                self.cv.notify_all()

    def cmd(self, command, **arguments):
        msg = {'execute': command, **({'arguments': arguments} if arguments else {})}
        with self.cv:
            n = len(self.replies)
            self.file.write(json.dumps(msg).encode() + b'\n')
            while len(self.replies) == n:
                if not self.cv.wait(30):
                    raise TimeoutError(command)
            reply = self.replies[n][1]
        if 'error' in reply:
            raise RuntimeError(f'{command}: {reply["error"]}')
        return reply['return']

    def hmp(self, line):
        return self.cmd('human-monitor-command', **{'command-line': line})


class Trace:
    """The QEMU log file that trace lines go to, read incrementally."""

    def __init__(self, path):
        self.path, self.offset, self.records = path, 0, []

    def poll(self):
        if not os.path.exists(self.path):
            return self.records
        with open(self.path, errors='replace') as f:
            f.seek(self.offset)
            chunk = f.read()
        complete = chunk[:chunk.rfind('\n') + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            if m := TRACE_RE.match(line):
                stamp = float(m.group(1)) if m.group(1) else None
                self.records.append((stamp, m.group(2), m.group(3), int(m.group(4), 16), int(m.group(5), 16), line))
        return self.records


def sbr_writes(records):
    """Bridge Control (0x3e) writes on root ports; bit 0x40 is Secondary Bus Reset."""
    return [r for r in records if r[1] == 'pcie-root-port' and r[3] == 0x3e]


def ms(seconds):
    return f'{seconds * 1000:7.1f} ms'


class Run:
    def __init__(self, args):
        self.work = args.workdir or tempfile.mkdtemp(prefix='e2e-measure.')
        os.makedirs(self.work, exist_ok=True)
        p = lambda name: os.path.join(self.work, name)
        for name in ('qmp.sock', 'console.sock', 'trace.log'):
            if os.path.exists(p(name)):
                os.unlink(p(name))
        cmd = [os.path.join(REPO, 'scripts/boot-guest.sh'), '--nic', '--console', p('console.sock')]
        if args.kernel:
            cmd += ['--kernel', args.kernel]
        cmd += [p('qmp.sock'), p('serial.log'), '--', '-msg', 'timestamp=on']
        self.t_start = time.time()
        self.qemu = subprocess.Popen(cmd, stderr=open(p('qemu.stderr'), 'w'))
        self.qmp = QMP(p('qmp.sock'))
        self.console = Console(p('console.sock'))
        self.trace = Trace(p('trace.log'))
        self.trace_path = p('trace.log')

    def close(self):
        self.qemu.terminate()
        self.qemu.wait()

    def mark(self):
        return len(self.console.lines), len(self.trace.poll()), len(self.qmp.events)

    def report_since(self, mark, t0, trace_filter=None):
        c, t, e = mark
        for when, text in self.console.lines[c:]:
            if text.strip():  # verbatim, but show ESC (ash's cursor query after the prompt) as ^[
                print(f'    console {ms(when - t0)}  {text.replace(chr(27), "^[")}')
        for rec in self.trace.poll()[t:]:
            if trace_filter is None or trace_filter(rec):
                print(f'    trace   {ms(rec[0] - t0) if rec[0] else "      ?   "}  {rec[5]}')
        for when, ev in self.qmp.events[e:]:
            print(f'    event   {ms(when - t0)}  {json.dumps(ev)}')

    def inject(self, target, status, settle=1.5, correctable=False):
        mark = self.mark()
        t0 = time.time()
        reply = self.qmp.hmp(f'pcie_aer_inject_error {"-c " if correctable else ""}{target} {status}')
        time.sleep(settle)
        return mark, t0, reply.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--kernel', choices=['vmlinux', 'vmlinuz'])
    ap.add_argument('--repeat', type=int, default=5, help='fatal injections at rp1 to time (default 5)')
    ap.add_argument('--workdir')
    args = ap.parse_args()

    run = Run(args)
    try:
        q, con = run.qmp, run.console
        print(f'QEMU {q.greeting["QMP"]["version"]["qemu"]}, workdir {run.work}')

        # Tracing exactly as the broker does it: event on, HMP logfile. No `log` item needed.
        q.cmd('trace-event-set-state', name='pci_cfg_write', enable=True)
        q.hmp(f'logfile {run.trace_path}')
        ready = con.wait_for(r'^GUEST-READY')
        boot = con.lines[ready][0] - run.t_start
        uptime = next((l for _, l in con.lines if l.startswith('init: kernel')), '?')
        print(f'\n== boot: GUEST-READY {boot:.2f} s after QEMU start ({uptime})')
        for _, l in con.lines:
            if l.startswith('init: pci') or 'AER: enabled' in l or '_OSC: OS now controls' in l:
                print(f'    {l}')
        time.sleep(1)
        print(f'    trace lines so far: {len(run.trace.poll())} (firmware + kernel enumeration); '
              f'QMP events during boot: {[e["event"] for _, e in q.events] or "none"}')

        def scenario(title, target, status, correctable=False, settle=1.5):
            print(f'\n== {title}: pcie_aer_inject_error {"-c " if correctable else ""}{target} {status}')
            mark, t0, reply = run.inject(target, status, settle, correctable)
            print(f'    HMP: {reply!r}')
            run.report_since(mark, t0, trace_filter=lambda r: r[1] == 'pcie-root-port' and r[3] in (0x3e,))
            return mark, t0

        def fatal(title, target, stats):
            mark, t0 = scenario(title, target, '0x10', settle=1.5)
            sbr = sbr_writes(run.trace.poll()[mark[1]:])
            on = [r for r in sbr if r[4] & 0x40]
            off = [r for r in sbr if on and not r[4] & 0x40 and r[0] > on[0][0]]
            first = next((w for w, l in con.lines[mark[0]:] if 'AER' in l), None)
            link = next((w for w, l in con.lines[mark[0]:] if 'link has been reset' in l), None)
            if on:
                stats.append((on[0][0] - t0, off[0][0] - on[0][0] if off else None,
                              first - t0 if first else None, link - t0 if link else None))

        def summary(title, stats):
            print(f'\n== {title}, {len(stats)} run(s) (min / median / max):')
            for k, label in enumerate(('injection -> SBR set (0x3e bit 0x40)', 'SBR set -> released',
                                       'injection -> first guest AER line', 'injection -> "link has been reset"')):
                vals = [st[k] for st in stats if st[k] is not None]
                if vals:
                    print(f'    {label:40s} {ms(min(vals))} / {ms(statistics.median(vals))} / {ms(max(vals))}')

        def reporting(qdev_id):
            """COMMAND and DEVCTL of a device as QEMU sees them, read through q35's ECAM
            window (0xb0000000) with HMP xp: QEMU delivers an uncorrectable error only if
            COMMAND.SERR (0x100) and the DEVCTL reporting bit for its severity are set."""
            for bus in q.cmd('query-pci'):
                todo = list(bus['devices'])
                while todo:
                    d = todo.pop()
                    todo += d.get('pci_bridge', {}).get('devices', [])
                    if d['qdev_id'] == qdev_id:
                        base = 0xb0000000 + (d['bus'] << 20) + (d['slot'] << 15) + (d['function'] << 12)
                        word = lambda off: int(q.hmp(f'xp /1wx {base + off:#x}').split()[-1], 16)
                        return f'COMMAND={word(4) & 0xffff:#06x} DEVCTL={word(0x48) & 0xffff:#06x}'
            return '?'

        print(f'\n    dev0 {reporting("dev0")}, nic0 {reporting("nic0")} (PCIe capability at 0x40 on both)')
        scenario('non-fatal CmpltTO at dev0 (virtio-rng-pci, reports itself)', 'dev0', '0x4000')
        scenario('correctable RxErr at dev0', 'dev0', '0x1', correctable=True)
        dev0_stats = []
        fatal('fatal DLP at dev0', 'dev0', dev0_stats)
        print(f'    dev0 after the guest\'s failed recovery: {reporting("dev0")}')
        scenario('fatal DLP at dev0 again', 'dev0', '0x10')
        scenario('non-fatal CmpltTO at nic0 (e1000e: DEVCTL reporting bits read-only)', 'nic0', '0x4000')
        scenario('non-fatal CmpltTO at rp1 (root port above e1000e)', 'rp1', '0x4000')
        rp1_stats = []
        for i in range(args.repeat):
            fatal(f'fatal DLP at rp1 (root port above e1000e) #{i + 1}', 'rp1', rp1_stats)
        summary('fatal DLP at dev0', dev0_stats)
        summary('fatal DLP at rp1', rp1_stats)

        print('\n== guest-initiated link reset without an error: sysfs reset of 01:00.0 with reset_method=bus')
        mark = run.mark()
        t0 = time.time()
        con.type('echo bus > /sys/bus/pci/devices/0000:01:00.0/reset_method; '
                 'echo 1 > /sys/bus/pci/devices/0000:01:00.0/reset; echo RESET-DONE $?\n')
        con.wait_for(r'^RESET-DONE', mark[0])
        time.sleep(0.5)
        run.report_since(mark, t0, trace_filter=lambda r: r[1] == 'pcie-root-port' and r[3] == 0x3e)

        def reboot(title, action):
            time.sleep(0.5)
            print(f'\n== {title}')
            mark = run.mark()
            t0 = time.time()
            action()
            again = con.wait_for(r'^GUEST-READY', mark[0])
            time.sleep(0.5)
            recs = run.trace.poll()[mark[1]:]
            print(f'    GUEST-READY again after {con.lines[again][0] - t0:.2f} s; '
                  f'{len(recs)} pci_cfg_write lines; root-port Bridge Control writes:')
            for rec in sbr_writes(recs):
                print(f'      {ms(rec[0] - t0)}  {rec[5]}')
            print(f'    writes with SBR bit 0x40 set: {sum(1 for r in sbr_writes(recs) if r[4] & 0x40)}')
            for when, ev in q.events[mark[2]:]:
                print(f'    event   {ms(when - t0)}  {json.dumps(ev)}')
            print(f'    dev0 after the reboot: {reporting("dev0")}')

        reboot('QMP system_reset', lambda: q.cmd('system_reset'))
        reboot('guest `reboot -f` typed on ttyS0', lambda: con.type('reboot -f\n'))
        print(f'\nserial log: {run.work}/serial.log, trace: {run.trace_path}')
    finally:
        run.close()


if __name__ == '__main__':
    main()
