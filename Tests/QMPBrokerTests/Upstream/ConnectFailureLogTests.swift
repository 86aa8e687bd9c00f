@testable import QMPBroker
import Glibc
import Testing

/// A wrong VMM socket path is logged at once, again when the error changes, and then once
/// a minute, never at every retry.
@Suite struct ConnectFailureLogTests {
    @Test func firstFailureChangesAndOncePerMinute() {
        var log = ConnectFailureLog()
        func logs(_ errno: Int32, at now: Double) -> Bool {
            let decision = log.shouldLog(errno: errno, now: now)
            if decision { log.logged() }
            return decision
        }
        #expect(logs(ENOENT, at: 0))
        #expect(!logs(ENOENT, at: 0.05))
        #expect(!logs(ENOENT, at: 30))
        #expect(logs(ECONNREFUSED, at: 31))
        #expect(!logs(ECONNREFUSED, at: 60))
        #expect(log.failuresSinceLogged == 1)
        #expect(logs(ECONNREFUSED, at: 91))
        log.reset()
        #expect(logs(ECONNREFUSED, at: 92))
    }
}
