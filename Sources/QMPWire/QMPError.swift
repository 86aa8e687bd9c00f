/// A QMP error reply's `error` member: QEMU's error classes and exact texts.
package struct QMPError: Error, Equatable, Sendable {
    package enum ErrorClass: String, Sendable {
        case genericError = "GenericError"
        case commandNotFound = "CommandNotFound"
        case deviceNotActive = "DeviceNotActive"
        case deviceNotFound = "DeviceNotFound"
        case kvmMissingCap = "KVMMissingCap"
    }

    package let errorClass: ErrorClass
    package let desc: String

    package init(_ errorClass: ErrorClass, _ desc: String) {
        self.errorClass = errorClass
        self.desc = desc
    }

    /// A `GenericError`, QEMU's class for nearly everything.
    package init(_ desc: String) { self.init(.genericError, desc) }

    /// `{"error": {...}}`, with the client's `id` when it sent one (qapi/qmp-dispatch.c).
    package func reply(id: JSON?) -> JSON {
        let error = JSON.qdict(["class": .string(errorClass.rawValue), "desc": .string(desc)])
        if let id { return .qdict(["error": error, "id": id]) }
        return .qdict(["error": error])
    }

    // Texts from QEMU 7.2 monitor/qmp.c and qapi/qmp-dispatch.c, checked against the binary.
    static let notAnObject = QMPError("QMP input must be a JSON object")
    static let lacksExecute = QMPError("QMP input lacks member 'execute'")
    static let argumentsNotObject = QMPError("QMP input member 'arguments' must be an object")
    static func memberNotString(_ name: String) -> QMPError { QMPError("QMP input member '\(name)' must be a string") }
    static func memberClashes(_ name: String, _ other: String) -> QMPError {
        QMPError("QMP input member '\(name)' clashes with '\(other)'")
    }
    static func unexpectedMember(_ name: String) -> QMPError { QMPError("QMP input member '\(name)' is unexpected") }
    package static let expectingNegotiation = QMPError(.commandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'")
    package static let negotiationComplete = QMPError(.commandNotFound, "Capabilities negotiation is already complete, command ignored")
    package static func commandNotFound(_ name: String) -> QMPError { QMPError(.commandNotFound, "The command \(name) has not been found") }
    package static func noOOBSupport(_ name: String) -> QMPError { QMPError("The command \(name) does not support OOB") }
    package static func unexpectedParameter(_ name: String) -> QMPError { QMPError("Parameter '\(name)' is unexpected") }
    package static func missingParameter(_ name: String) -> QMPError { QMPError("Parameter '\(name)' is missing") }
    package static func invalidParameterType(_ name: String, expected: String) -> QMPError {
        QMPError("Invalid parameter type for '\(name)', expected: \(expected)")
    }
    /// QEMU 7.2 really names the parameter 'null' here (a visitor quirk); clients see exactly this.
    package static func capabilityValueRejected(_ value: String) -> QMPError {
        QMPError("Parameter 'null' does not accept value '\(value)'")
    }
    package static func capabilityNotAvailable(_ names: String) -> QMPError { QMPError("Capability \(names) not available") }
}
