import VFIOWatch

/// Whether a VM is protected, as a fleet's metrics show it: its guest
/// link-reset watch, and each watched device's error trigger. A device is protected only
/// while both hold: without the trigger QEMU stops the VM on any uncorrectable error (or
/// nobody hears it); without the watch a guest reset of a flagged link goes unnoticed.
struct VMProtection: Equatable {
    struct Device: Equatable {
        let id: String
        /// `takeover`, `eventfd` or `none`: what the broker hears the device's errors through.
        let triggerSource: String
        var triggerActive: Bool { triggerSource != Self.noSource }
        static let noSource = "none"
    }

    /// The watch is intact.
    let watchIntact: Bool
    /// What the watch reads (`trace-log`, …), or `none` while it is not intact.
    let watchSource: String
    let devices: [Device]

    var unprotectedDevices: Int { watchIntact ? devices.filter { !$0.triggerActive }.count : devices.count }

    /// `source`: the status board's `linkResetSource` (`usdt` or `trace-log`); when it says
    /// nothing, an intact watch is the trace log.
    init(watchIntact: Bool, source: String?, devices: [Device]) {
        self.watchIntact = watchIntact
        self.watchSource = watchIntact ? (source ?? "trace-log") : Device.noSource
        self.devices = devices
    }
}

extension WatchedDevice {
    /// The source of the device's error interrupt, as `query-vfio-devices` lists it in `sources`.
    var triggerSource: String {
        if triggerWatcher != nil { return ErrorTriggerMode.takeover.rawValue }
        if !eventFDs.isEmpty { return ErrorTriggerMode.eventfd.rawValue }
        return VMProtection.Device.noSource
    }
}
