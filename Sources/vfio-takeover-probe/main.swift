// vfio-takeover-probe: takes a vfio device's error trigger over from a running VMM the
// way the broker does, and prints each error the kernel signals. For operators checking a
// host (rights, kernel, QEMU) before trusting the broker with it, and for the host drills.
//
//   vfio-takeover-probe PID DDDD:BB:DD.F [SECONDS]
//
// Prints `takeover: method=...` (or `takeover failed: ...` and exits 1), then
// `ERR count=N` per wakeup, and `released` after SECONDS (default 30) or on SIGTERM/SIGINT.
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

/// Set by SIGTERM/SIGINT; the wait below notices it within its poll interval.
let stopRequested = Atomic<Bool>(false)

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4, let pid = pid_t(arguments[1]),
      let host = HostAddress(arguments[2]) else {
    fail("usage: vfio-takeover-probe PID DDDD:BB:DD.F [SECONDS]")
}
let seconds = arguments.count == 4 ? Int(arguments[3]) ?? 30 : 30

let eventFD: Int32
do {
    eventFD = try EventFD.makeEventFD()
} catch {
    fail("eventfd: \(error)")
}
let trigger: VFIOErrorTrigger
do {
    let started = ContinuousClock.now
    trigger = try VFIOErrorTrigger.takeOver(vmmPID: pid, host: host, eventFD: eventFD)
    let microseconds = (ContinuousClock.now - started) / .microseconds(1)
    say("takeover: method=\(trigger.method.rawValue) in \(Int(microseconds)) us")
} catch {
    fail("takeover failed: \(error)")
}

for signalNumber in [SIGTERM, SIGINT] {
    signal(signalNumber) { _ in stopRequested.store(true, ordering: .relaxed) }
}
// A plain poll loop: the probe watches one descriptor, so it needs no event loop.
let end = ContinuousClock.now + .seconds(seconds)
while !stopRequested.load(ordering: .relaxed) && ContinuousClock.now < end {
    var watched = pollfd(fd: eventFD, events: Int16(POLLIN), revents: 0)
    guard poll(&watched, 1, 200) > 0 else { continue }
    do {
        if let count = try EventFD.drain(eventFD) { say("ERR count=\(count)") }
    } catch {
        say("eventfd: \(error)")
        break
    }
}
if let failure = trigger.release() { say("disarm failed: \(failure)") }
close(eventFD)
say("released")
