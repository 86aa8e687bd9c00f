import Glibc
import QMPSessions

/// How one VM is served: where its VMM's monitor is and how its own socket looks.
public struct VMConfiguration: Sendable, Equatable {
    public var name: String
    public var upstreamPath: String
    public var socketPath: String
    public var socketMode: UInt32 = 0o660
    /// A second socket that accepts only `query-*` commands, if wanted.
    public var readOnlySocketPath: String?
    /// When non-empty, only peers whose uid or gid is listed may connect (SO_PEERCRED).
    public var allowedUIDs: Set<UInt32> = []
    public var allowedGIDs: Set<UInt32> = []
    /// A client whose unread events exceed this is disconnected; one whose unread replies
    /// exceed a quarter of it is not read until it has read them (it is slowed, not dropped).
    public var clientQueueBytes: Int = 4 << 20
    /// The VFIO devices to watch and how.
    public var recovery = VFIORecoverySettings()
    /// The regular file QEMU logs its trace events into (QEMU opens it itself, so the
    /// VMM's user and MAC profile must allow it); nil: guest link resets are not watched.
    public var traceLogPath: String?
    /// A file holding the VMM's pid (QEMU's `-pidfile`), for when the process that listens on
    /// the QMP socket is not the VMM; nil: SO_PEERCRED of the upstream socket.
    public var vmmPIDFile: String?
    /// The VMM must greet and answer `qmp_capabilities` within this, or it is dropped and retried.
    public var handshakeTimeoutMilliseconds = UpstreamSession.defaultHandshakeTimeoutMilliseconds
    /// A forwarded command the VMM has not answered after this gets a `GenericError`.
    public var commandTimeoutMilliseconds = 60_000
    /// Whether clients stay connected across VMM restarts without asking
    /// (`broker-stay-connected`); by default they read EOF when the VMM goes, as from QEMU.
    public var clientsStayConnected = false
    /// How often QEMU's trace state is re-checked, and a broken watch retried, when no client
    /// command gave cause: each check is a few round trips, so with many VMs it is what an
    /// idle broker spends its time on.
    public var linkResetCheckMilliseconds = 30_000
    /// How many numbered events `query-broker-events` can replay.
    public var eventRingSize = 1024
    /// The trace log's mode and owner, for a QEMU that runs as another user than the broker.
    public var traceLogMode: UInt32 = 0o600
    public var traceLogOwner: FileOwner?

    public struct FileOwner: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32

        public init(uid: UInt32, gid: UInt32) {
            self.uid = uid
            self.gid = gid
        }
    }

    public init(name: String, upstreamPath: String, socketPath: String) {
        self.name = name
        self.upstreamPath = upstreamPath
        self.socketPath = socketPath
        self.traceLogPath = Self.absolute("\(Self.directory(of: socketPath))/\(name).trace.log")
    }

    private static func directory(of path: String) -> String {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return directory.isEmpty ? (path.hasPrefix("/") ? "" : ".") : directory
    }

    /// QEMU resolves a relative `logfile` against its own working directory, not the
    /// broker's: the broker's path is made absolute before it is handed over.
    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        guard let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        let base = String(cString: cwd)
        let relative = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
        return base == "/" ? "/\(relative)" : "\(base)/\(relative)"
    }
}
