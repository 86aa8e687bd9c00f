// vfio-takeover-probe: takes a vfio device's error trigger over from a running VMM the
// way the broker does, and prints each error the kernel signals. For operators checking a
// host (rights, kernel, QEMU) before trusting the broker with it, and for the host drills.
//
//   vfio-takeover-probe PID DDDD:BB:DD.F [SECONDS]
//
// Prints `takeover: method=...` (or `takeover failed: ...` and exits 1), then
// `ERR count=N` per wakeup, and `released` after SECONDS (default 30) or on SIGTERM/SIGINT.
import Dispatch
import Glibc
import Synchronization
import VFIOWatch

/// Prints one line at once (stdout may be a pipe or a file, which buffer).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

func fail(_ message: String) -> Never {
    say(message)
    exit(1)
}

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4, let pid = pid_t(arguments[1]),
      let host = HostAddress(arguments[2]) else {
    fail("usage: vfio-takeover-probe PID DDDD:BB:DD.F [SECONDS]")
}
let seconds = arguments.count == 4 ? Int(arguments[3]) ?? 30 : 30

let queue = DispatchQueue(label: "vfio-takeover-probe")
let watcher: EventFDWatcher
do {
    let report: @Sendable (UInt64) -> Void = { count in say("ERR count=\(count)") }
    watcher = try EventFDWatcher(fd: try EventFD.makeEventFD(), queue: queue, handler: report)
} catch {
    fail("eventfd: \(error)")
}
let trigger: Mutex<VFIOErrorTrigger?>
do {
    let started = ContinuousClock.now
    let taken = try VFIOErrorTrigger.takeOver(vmmPID: pid, host: host, eventFD: watcher.fd)
    let microseconds = (ContinuousClock.now - started) / .microseconds(1)
    say("takeover: method=\(taken.method.rawValue) in \(Int(microseconds)) us")
    trigger = Mutex(taken)
} catch {
    watcher.cancel()
    fail("takeover failed: \(error)")
}
watcher.start()

@Sendable func finish() -> Never {
    if let failure = trigger.withLock({ $0.take() })?.release() { say("disarm failed: \(failure)") }
    say("released")
    exit(0)
}
// Typed @Sendable so that it is not taken as main-actor code: it runs on `queue`.
let onSignal: @Sendable () -> Void = { finish() }
let signalSources = [SIGTERM, SIGINT].map { signalNumber in
    signal(signalNumber, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
    source.setEventHandler(handler: onSignal)
    source.resume()
    return source
}
queue.asyncAfter(deadline: .now() + .seconds(seconds)) { finish() }
withExtendedLifetime(signalSources) { dispatchMain() }
