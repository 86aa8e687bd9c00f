import ErrorEvents
import VFIOWatch

/// How one VM's VFIO devices are watched (the `run` options and config file).
public struct VFIORecoverySettings: Sendable, Equatable {
    /// Root of the sysfs tree with the AER counters (`/sys`; tests use a fake tree).
    public var sysfsRoot = "/sys"
    /// How often the AER counters are read when no eventfd fires, while the kernel's
    /// `ras:aer_event` tracepoint cannot be heard (0: never).
    public var pollMilliseconds = 1000
    /// How often they are read while the tracepoint is heard (0: never). Every error the
    /// AER core handles is then announced at once; the poll is only the safety net for
    /// records lost or CPUs brought online later, so it runs rarely (30 s: idle cost at
    /// 1,000 VMs of 33 counter reads a second instead of 1,000). An explicit
    /// `sysfs-poll-ms` sets both.
    public var pollMillisecondsBesideTracepoint = 30_000
    /// `x-vfio-inject-error` simulates host errors; off unless asked for.
    public var allowInject = false
    /// Devices known from the configuration.
    public var devices: [DeviceConfiguration] = []
    /// Eventfds inherited at start (`--eventfd VM/DEVICE/SEVERITY=FD`).
    public var inheritedEventFDs: [InheritedEventFD] = []

    public init() {}

    public struct DeviceConfiguration: Sendable, Equatable {
        public var id: String
        public var host: String
        public var policy = DevicePolicy.default
        /// `policy.autoCont`, as the config file spells it (`auto-cont`).
        public var autoCont: Bool {
            get { policy.autoCont }
            set { policy.autoCont = newValue }
        }
        public var injectAt: String?
        /// nil: takeover for a vfio-pci device, else eventfd.
        public var errorTrigger: ErrorTriggerMode?

        public init(id: String, host: String) {
            self.id = id
            self.host = host
        }
    }

    public struct InheritedEventFD: Sendable, Equatable {
        public var device: String
        public var severity: EventFDSeverity
        public var fd: Int32

        public init(device: String, severity: EventFDSeverity, fd: Int32) {
            self.device = device
            self.severity = severity
            self.fd = fd
        }
    }
}
