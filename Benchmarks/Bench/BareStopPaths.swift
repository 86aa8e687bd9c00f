import BrokerTesting
import Glibc
import QMPBroker
import VFIOWatch

/// The two floors of the error → stop rows, ready for trials interleaved with the broker's:
/// an eventfd and a trace log followed with inotify, each with a `BareStopRelay` writing
/// `stop` to one scripted VMM on a socketpair.
final class BareStopPaths {
    private let peer: ScriptedVMM
    private let output: Int32
    private let trigger: Int32
    private let log: Int32
    private let follow: Int32
    private let notify: Int32
    private let relays: [BareStopRelay]

    init(directory: String, group: ScriptedVMMGroup) throws {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw QMPClient.Failure("socketpair: errno \(errno)")
        }
        output = pair[0]
        peer = group.serve(connected: pair[1])
        trigger = try EventFD.makeEventFD()
        let path = "\(directory)/bare.trace.log"
        log = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        follow = open(path, O_RDONLY | O_CLOEXEC)
        notify = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard log >= 0, follow >= 0, notify >= 0, inotify_add_watch(notify, path, UInt32(IN_MODIFY)) >= 0 else {
            throw QMPClient.Failure("cannot follow \(path)")
        }
        relays = [try BareStopRelay(trigger: trigger, output: output),
                  try BareStopRelay(trigger: notify, follow: follow, output: output)]
    }

    func eventFDTrial() throws -> Double {
        try ScriptedStopBench.timeToStop(at: peer) { try EventFD.signal(trigger) }
    }

    func traceLineTrial() throws -> Double {
        try ScriptedStopBench.timeToStop(at: peer) { try ScriptedStopBench.append(ScriptedStopBench.resetLine, to: log) }
    }

    func close() {
        relays.forEach { $0.stop() }
        peer.close()
        // The relays' threads may still be in poll: give them a moment before their descriptors go.
        usleep(10_000)
        [output, trigger, log, follow, notify].forEach { _ = Glibc.close($0) }
    }
}
