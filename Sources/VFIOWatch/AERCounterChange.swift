import ErrorEvents

/// What happened to a device's AER counters between two reads.
///
/// One delta per severity that grew, so that the broker can emit one event per
/// severity; the first is the most severe, which is what an eventfd tagged `any` is
/// classified as ("fatal wins").
package struct AERCounterChange: Sendable, Hashable {
    /// Most severe first; at most one per severity.
    package var deltas: [AERCounterDelta]
    /// Severities whose counts became a new baseline without being reported: they went
    /// backwards (device re-enumerated) or their file appeared.
    package var rebaselined: [Severity]

    package init(deltas: [AERCounterDelta] = [], rebaselined: [Severity] = []) {
        self.deltas = deltas
        self.rebaselined = rebaselined
    }

    /// Nothing to report (a rebaseline alone reports nothing).
    package var isEmpty: Bool { deltas.isEmpty }

    /// The severity to classify the notification as: the most severe that grew.
    package var mostSevere: Severity? { deltas.first?.severity }

    package subscript(severity: Severity) -> AERCounterDelta? {
        deltas.first { $0.severity == severity }
    }
}
