import BrokerTesting
import EventLoop
import Glibc
import LinkResetTrace
@testable import QMPBroker
import Synchronization
import Testing
import USDTProbes

/// USDTProbeSession against a real process with QEMU-named USDT probes and semaphores
/// (Tests/USDTFakeVMM/fake-usdt-vmm.c, compiled with systemtap's <sys/sdt.h>): the uprobe PMU, the
/// semaphore as ref_ctr_offset, a thread that existed before arming, register and
/// string decoding. Skipped without a C compiler, <sys/sdt.h> or the uprobe PMU.
@Suite(.serialized, .enabled(if: USDTFakeVMM.usable, "needs cc, <sys/sdt.h> (systemtap-sdt-dev) and the uprobe PMU"))
struct USDTProbeSessionTests {
    @Test func hitsOfAThreadStartedBeforeArmingAreDecoded() throws {
        let fake = try USDTFakeVMM()
        defer { fake.stop() }
        let loop = EventLoop(name: "usdt-test")
        defer { loop.shutdown() }
        let hits = HitList()
        let requests = RequestList()
        let pid = fake.pid
        let session = try loop.runAndWait { () throws(USDTProbeSession.Failure) -> LoopBound<USDTProbeSession> in
            let found = try USDTProbeSession.readSites(pid: pid)
            let session = try USDTProbeSession(pid: pid, binaryPath: found.path, sites: found.sites, loop: loop)
            session.onHit = { hit in hits.list.withLock { $0.append(hit) } }
            session.onRequest = { text in requests.list.withLock { $0.append(text) } }
            return LoopBound(session, loop: loop)
        }
        let checksIDs = loop.runAndWait { session.value.canaryUnchecked == nil }
        #expect(checksIDs == (USDTCanaryEvent.tracefs != nil))
        defer { loop.runAndWait { session.value.close() } }
        fake.send("swcr")
        let deadline = Deadline(after: 10)
        while hits.list.withLock({ $0.count }) < 4, !deadline.passed { usleep(10_000) }
        let config = PCIConfigAccess(model: "pcie-root-port", address: GuestPCIAddress(bus: 0, slot: 0x1c, function: 0),
                                     offset: 0x3e, value: 0x40)
        #expect(hits.list.withLock { $0 } == [.trace(.configWrite(config)), .qmpRequest(monitor: 0x5678),
                                         .trace(.systemReset(.begin)), .trace(.systemReset(.end))])
        #expect(fake.output().contains("semaphore 1"), "the kernel raised the semaphore: \(fake.output())")
        // The request's text as it was at the hit, through the tracefs canary event.
        if checksIDs {
            loop.runAndWait { session.value.drain() }
            #expect(requests.list.withLock { $0 } == [#"{"execute": "query-status"}"#])
        }
    }

    @Test func aProbeArgumentBecomesATracefsStringFetch() throws {
        #expect(USDTCanaryEvent.stringFetch(try USDTArgument.parse("8@(%rax)")) == "+0(+0(%ax)):string")
        #expect(USDTCanaryEvent.stringFetch(try USDTArgument.parse("8@-16(%rbp)")) == "+0(-16(%bp)):string")
        #expect(USDTCanaryEvent.stringFetch(try USDTArgument.parse("8@%r12")) == "+0(%r12):string")
        #expect(USDTCanaryEvent.stringFetch(try USDTArgument.parse("8@$0")) == nil)
    }

    /// Only the canary's own request proves the path, not another client's.
    @Test func theCanaryCountsOnlyARequestWithItsID() {
        #expect(USDTLinkResetSource.request(#"{"execute": "query-status", "id": 42}"#, carries: 42))
        #expect(USDTLinkResetSource.request(#"{"id": 42, "execute": "query-status"}"#, carries: 42))
        #expect(!USDTLinkResetSource.request(#"{"execute": "query-status", "id": 421}"#, carries: 42))
        #expect(!USDTLinkResetSource.request(#"{"execute": "query-status", "id": "42"}"#, carries: 42))
        #expect(!USDTLinkResetSource.request(#"{"execute": "query-status"}"#, carries: 42))
        #expect(!USDTLinkResetSource.request(#"{"execute": "query-status", "id": 4"#, carries: 4))
    }
}

final class HitList: Sendable {
    let list = Mutex<[QEMUProbeHit]>([])
}

final class RequestList: Sendable {
    let list = Mutex<[String]>([])
}

/// The compiled fake and its running process.
final class USDTFakeVMM {
    static let source = "\(#filePath)".replacingSuffix("BrokerUnitTests/USDTProbeSessionTests.swift", with: "USDTFakeVMM/fake-usdt-vmm.c")
    static let usable = access("/usr/include/x86_64-linux-gnu/sys/sdt.h", R_OK) == 0 || access("/usr/include/sys/sdt.h", R_OK) == 0
        ? access("/sys/bus/event_source/devices/uprobe/type", R_OK) == 0 : false

    let directory: TemporaryDirectory
    let process: ChildProcess
    private let fifo: String
    private var writer: Int32 = -1

    init() throws {
        directory = try TemporaryDirectory()
        let binary = directory.file("fake-usdt-vmm")
        let compiler = try ChildProcess(["cc", "-O2", "-pthread", "-o", binary, Self.source], outputPath: directory.file("cc.log"))
        guard compiler.wait(timeout: 60) == 0 else { throw QMPClient.Failure("cc: \(directory.read("cc.log"))") }
        fifo = directory.file("commands")
        mkfifo(fifo, 0o600)
        process = try ChildProcess([binary, fifo], outputPath: directory.file("out.log"))
    }

    var pid: pid_t { process.pid }

    /// Opens the FIFO (the worker is blocked in fopen until then) and writes the commands.
    func send(_ commands: String) {
        if writer < 0 { writer = open(fifo, O_WRONLY) }
        _ = commands.withCString { write(writer, $0, strlen($0)) }
    }

    func output() -> String {
        send("s")
        usleep(100_000)
        return directory.read("out.log")
    }

    func stop() {
        if writer >= 0 { close(writer) }
        process.kill(signal: SIGKILL)
    }
}

private extension String {
    func replacingSuffix(_ suffix: String, with replacement: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) + replacement : self
    }
}
