import Glibc
import Synchronization

/// The broker's loops: VMs are spread over them, each VM staying on one for its life.
public final class EventLoopGroup: Sendable {
    package let loops: [EventLoop]
    private let nextIndex = Atomic<Int>(0)

    /// One loop per core by default: each loop is one thread, and a VM's work never needs
    /// more than one.
    package static var defaultLoopCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    package init(loopCount: Int = EventLoopGroup.defaultLoopCount, name: String = "qmp-broker") {
        loops = (0..<max(1, loopCount)).map { EventLoop(name: "\(name)-loop-\($0)") }
    }

    /// The group of a process that did not make its own (tests, the demo, library users).
    public static let shared = EventLoopGroup()

    /// Round robin: the next VM goes to the next loop.
    package func next() -> EventLoop {
        loops[nextIndex.add(1, ordering: .relaxed).oldValue % loops.count]
    }

    package func shutdown() {
        for loop in loops { loop.shutdown() }
    }
}
