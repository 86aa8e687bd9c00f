// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "qmp-broker",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "qmp-broker", targets: ["qmp-broker"]),
        .library(name: "QMPBroker", targets: ["QMPBroker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CJansson",
            pkgConfig: "jansson",
            providers: [.apt(["libjansson-dev"])]
        ),
        // schemas/ is the source of truth for what the broker adds to QMP; it is embedded, not copied.
        .target(
            name: "BrokerSchema",
            path: "schemas",
            exclude: ["README.md"],
            sources: ["BrokerSchema.swift"],
            resources: [.embedInCode("qmp-broker.json")]
        ),
        // <linux/vfio.h> ioctls and the pidfd system calls, wrapped for Swift (headers only).
        .systemLibrary(name: "CVFIO", providers: [.apt(["linux-libc-dev"])]),
        // The epoll loop every socket, eventfd, inotify and netlink descriptor runs on; it is
        // the serial executor of the VM actors. No dependencies.
        .systemLibrary(name: "CEpoll"),
        .target(name: "EventLoop", dependencies: ["CEpoll"]),
        .testTarget(name: "EventLoopTests", dependencies: ["EventLoop", "CEpoll"]),
        // The error domain: severities, AER names, per-device state machine, policies. No I/O.
        .target(name: "ErrorEvents"),
        // Kernel tracepoint records from bytes: tracefs format files, raw records, perf ring
        // buffers, `ras:aer_event`. No I/O.
        .target(name: "KernelTracepoint"),
        .testTarget(name: "KernelTracepointTests", dependencies: ["KernelTracepoint"]),
        // Host error sources: eventfds, sysfs AER counters, kernel uevents, the AER tracepoint.
        .target(
            name: "VFIOWatch",
            dependencies: ["CVFIO", "EventLoop", "ErrorEvents", "KernelTracepoint", .product(name: "Logging", package: "swift-log")]
        ),
        // Durable state: device flags, policies, counters and the error history, in SQLite.
        .target(
            name: "BrokerState",
            dependencies: ["ErrorEvents", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // The QMP wire format: QEMU's JSON lexer, streamer, parser and writer, requests. No I/O.
        .target(name: "QMPWire", dependencies: ["CJansson"]),
        .testTarget(name: "QMPWireTests", dependencies: ["QMPWire"]),
        // The QMP protocol state machines and tables of both sides (sessions, pending commands,
        // reply order, event ring). No I/O.
        .target(name: "QMPSessions", dependencies: ["QMPWire"]),
        .testTarget(name: "QMPSessionsTests", dependencies: ["QMPSessions", "QMPWire"]),
        // Guest link resets from QEMU's trace lines: parsing, SBR detection, PCI topology. No I/O.
        .target(name: "LinkResetTrace", dependencies: ["QMPWire"]),
        .testTarget(name: "LinkResetTraceTests", dependencies: ["LinkResetTrace", "QMPWire"]),
        // QEMU's USDT probes (dtrace builds): ELF `.note.stapsdt`, argument specs, perf
        // samples, probe hits as trace events. No I/O.
        .target(name: "USDTProbes", dependencies: ["LinkResetTrace"]),
        .testTarget(name: "USDTProbesTests", dependencies: ["USDTProbes", "LinkResetTrace"]),
        // perf_event_open(2) for uprobes, its ioctls and process_vm_readv(2) (headers only).
        .systemLibrary(name: "CPerfEvent"),
        .target(
            name: "QMPBroker",
            dependencies: [
                "EventLoop",
                "QMPWire",
                "QMPSessions",
                "LinkResetTrace",
                "USDTProbes",
                "CPerfEvent",
                "ErrorEvents",
                "BrokerState",
                "VFIOWatch",
                "KernelTracepoint",
                "BrokerSchema",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // `qmp-broker demo`'s recovery drill against a real QEMU, with what it needs: child
        // processes, QEMU's qtest, temporary and fake sysfs trees. Shipped in the binary.
        .target(
            name: "RecoveryDrill",
            dependencies: ["EventLoop", "QMPBroker", "QMPWire", "VFIOWatch", "ErrorEvents",
                           .product(name: "Logging", package: "swift-log")]
        ),
        // Helpers for tests and the bench (scripted VMMs, wire exercises), on top of the
        // drill's. Not a product, and not in the shipped binary.
        .target(
            name: "BrokerTesting",
            dependencies: [
                "RecoveryDrill", "CEpoll", "EventLoop", "QMPBroker", "QMPWire", "QMPSessions", "VFIOWatch", "ErrorEvents", "BrokerState",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "qmp-broker",
            dependencies: [
                "QMPBroker",
                "EventLoop",
                "QMPWire",
                "RecoveryDrill",
                "ErrorEvents",
                "VFIOWatch",
                "BrokerState",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Takes a device's error trigger over from a running VMM and prints its errors.
        .executableTarget(name: "vfio-takeover-probe", dependencies: ["VFIOWatch"]),
        // `make bench`: measured figures next to baselines taken in the same run.
        .executableTarget(
            name: "qmp-broker-bench",
            dependencies: ["QMPBroker", "QMPWire", "BrokerTesting", "VFIOWatch", "EventLoop", "BrokerState", "ErrorEvents", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/Bench"
        ),
        // The fan-out bench's reader: one process with one epoll over all the client sockets.
        .executableTarget(name: "qmp-broker-fanout-reader", path: "Benchmarks/FanoutReader"),
        .testTarget(name: "ErrorEventsTests", dependencies: ["ErrorEvents"]),
        .testTarget(name: "VFIOWatchTests", dependencies: ["VFIOWatch", "KernelTracepoint", "EventLoop", "ErrorEvents", "QMPBroker", "BrokerTesting"]),
        .testTarget(
            name: "BrokerStateTests",
            dependencies: ["BrokerState", "ErrorEvents", "BrokerTesting", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(name: "QMPBrokerTests", dependencies: ["QMPBroker", "EventLoop", "QMPWire", "QMPSessions", "BrokerTesting", "ErrorEvents", "VFIOWatch", .product(name: "Logging", package: "swift-log")]),
        // Routing, recovery wiring and the trace follower against ScriptedVMM: real sockets, no QEMU.
        .testTarget(name: "BrokerUnitTests", dependencies: ["BrokerTesting", "QMPBroker", "QMPWire", "LinkResetTrace", "VFIOWatch", "KernelTracepoint", "USDTProbes", "EventLoop",
                                                            .product(name: "Logging", package: "swift-log")]),
        // Runs against a real qemu-system-x86_64, real sockets and the built CLI.
        .testTarget(name: "IntegrationTests", dependencies: ["QMPBroker", "EventLoop", "QMPWire", "QMPSessions", "LinkResetTrace", "BrokerTesting", "VFIOWatch", "BrokerState", "USDTProbes"]),
    ],
    swiftLanguageModes: [.v6]
)

// Release builds let the optimiser inline across the broker's own modules: the pure modules'
// `package` code runs on every forwarded command and on the error path from QMPBroker.
for target in package.targets where [.regular, .executable].contains(target.type) {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
    ]
}
