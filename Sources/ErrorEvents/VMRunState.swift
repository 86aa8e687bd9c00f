/// The VM's run state as the broker last heard it: learnt at attach (`query-status`),
/// then followed through STOP and RESUME. A device watched later starts from it.
package struct VMRunState: Sendable, Equatable {
    /// Assumed running until told otherwise (a VM the broker has not seen yet).
    package private(set) var running = true
    /// Whether `query-status` has answered: before that a restored broker stop cannot be judged.
    package private(set) var learnt = false

    package init() {}

    package mutating func apply(_ event: VMRunEvent) {
        switch event {
        case .runStateLearnt(let running):
            self.running = running
            learnt = true
        case .stopped:
            running = false
        case .resumed:
            running = true
        case .reset:
            break
        }
    }
}
