/// One `ras:aer_event` record: the kernel's AER core handled an error that `deviceName`
/// reported (include/ras/ras_event.h, emitted by `aer_print_error` after the device's
/// `aer_dev_*` counters were incremented). rasdaemon records host AER errors from it.
package struct AERTraceEvent: Hashable, Sendable {
    /// The reporting function, `dev_name()` of the pci_dev: `0000:01:00.0`.
    package let deviceName: String
    /// The AER status bits (correctable or uncorrectable register), masked bits removed;
    /// 0 when the kernel could not read the device (a fatal error behind a dead link).
    package let status: UInt32
    package let severity: AERTraceSeverity
    package let tlpHeaderValid: Bool

    package init(deviceName: String, status: UInt32, severity: AERTraceSeverity, tlpHeaderValid: Bool) {
        self.deviceName = deviceName
        self.status = status
        self.severity = severity
        self.tlpHeaderValid = tlpHeaderValid
    }
}

/// The record's `severity` byte: the kernel's `AER_NONFATAL` 0, `AER_FATAL` 1,
/// `AER_CORRECTABLE` 2 (include/linux/aer.h).
package enum AERTraceSeverity: UInt8, Hashable, Sendable {
    case nonFatal = 0
    case fatal = 1
    case correctable = 2
}

/// Where `ras:aer_event`'s fields sit on this kernel, from its `format` file; decodes raw
/// records with no allocation but the device name.
package struct AERTraceLayout: Hashable, Sendable {
    package static let system = "ras"
    package static let event = "aer_event"

    package let format: TracepointFormat
    private let commonType: TracepointField
    private let deviceName: TracepointField
    private let status: TracepointField
    private let severity: TracepointField
    private let tlpHeaderValid: TracepointField?

    package init(_ format: TracepointFormat) throws(TracepointFormatError) {
        func required(_ name: String, _ valid: (TracepointField) -> Bool) throws(TracepointFormatError) -> TracepointField {
            guard let field = format.field(named: name), valid(field) else { throw .missingField(name) }
            return field
        }
        self.format = format
        commonType = try required("common_type") { $0.storage == .inline && $0.size == 2 }
        deviceName = try required("dev_name") { $0.storage != .inline }
        status = try required("status") { $0.storage == .inline && $0.size == 4 }
        severity = try required("severity") { $0.storage == .inline && $0.size == 1 }
        tlpHeaderValid = format.field(named: "tlp_header_valid")
    }

    /// The event in one raw record; nil for a record of another tracepoint, or one too
    /// short for its fields.
    package func decode(_ raw: UnsafeRawBufferPointer) -> AERTraceEvent? {
        let record = TracepointRecord(raw)
        guard let type = record.unsigned(commonType), type == format.id & 0xffff,
              let status = record.unsigned(status), let severityByte = record.unsigned(severity),
              let severity = AERTraceSeverity(rawValue: UInt8(severityByte)),
              let name = record.string(deviceName) else { return nil }
        let valid = tlpHeaderValid.flatMap(record.unsigned) ?? 0
        return AERTraceEvent(deviceName: name, status: UInt32(status), severity: severity, tlpHeaderValid: valid != 0)
    }
}
