import Glibc
import QMPBroker
import QMPWire

extension QMPClient {
    /// Waits until the broker says the VM's guest link resets are watched (`query-broker`):
    /// tracing is switched on asynchronously after attach.
    package func waitForLinkResetWatch(timeout: Double = 15) throws {
        let deadline = Deadline(after: timeout)
        while !deadline.passed {
            if try execute("query-broker")["return"]?["vms"]?[0]?["link-reset-watch"]?.bool == true { return }
            usleep(10_000)
        }
        throw Failure("the broker never started watching for guest link resets")
    }
}

extension JSON {
    /// An event's `timestamp` in microseconds since the epoch (0 when absent).
    package var eventMicroseconds: Int64 {
        (self["timestamp"]?["seconds"]?.integer ?? 0) * 1_000_000 + (self["timestamp"]?["microseconds"]?.integer ?? 0)
    }
}
