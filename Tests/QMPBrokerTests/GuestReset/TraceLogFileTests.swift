import BrokerTesting
import Foundation
import Glibc
@testable import QMPBroker
import Testing

extension GuestReset {
    /// The trace log QEMU appends to never follows what someone planted at its path.
    @Suite struct TraceLogFileTests {
        let directory: TemporaryDirectory

        init() throws { directory = try TemporaryDirectory() }

        private func regularFileAt(_ path: String) -> Bool {
            var status = stat()
            return lstat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFREG
        }

        @Test func aPlantedSymlinkIsReplacedAndItsTargetUntouched() throws {
            let victim = directory.file("victim")
            try "secret\n".write(toFile: victim, atomically: false, encoding: .utf8)
            let path = directory.file("vm1.trace.log")
            #expect(symlink(victim, path) == 0)
            let file = try TraceLogFile.open(path)
            defer { close(file.fd) }
            #expect(regularFileAt(path))
            #expect(file.isStillAtPath)
            #expect(file.warnings.contains { $0.contains("symbolic link") })
            // QEMU's open of the path (fopen "a") now reaches the broker's file, not the victim.
            let qemu = fopen(path, "a")
            fputs("pci_cfg_write x\n", qemu)
            fclose(qemu)
            #expect(try String(contentsOfFile: victim, encoding: .utf8) == "secret\n")
            var buffer = [UInt8](repeating: 0, count: 64)
            #expect(read(file.fd, &buffer, 64) == 16)
        }

        @Test func aDanglingSymlinkIsNotFollowedToCreateItsTarget() throws {
            let target = directory.file("created-elsewhere")
            let path = directory.file("vm1.trace.log")
            #expect(symlink(target, path) == 0)
            let file = try TraceLogFile.open(path)
            close(file.fd)
            #expect(access(target, F_OK) != 0)
            #expect(regularFileAt(path))
        }

        @Test func aFIFOOrAHardLinkIsReplaced() throws {
            let fifo = directory.file("fifo.trace.log")
            #expect(mkfifo(fifo, 0o600) == 0)
            let fromFIFO = try TraceLogFile.open(fifo)
            close(fromFIFO.fd)
            #expect(regularFileAt(fifo))

            let victim = directory.file("victim")
            try "keep\n".write(toFile: victim, atomically: false, encoding: .utf8)
            let linked = directory.file("linked.trace.log")
            #expect(link(victim, linked) == 0)
            let fromLink = try TraceLogFile.open(linked)
            close(fromLink.fd)
            #expect(fromLink.warnings.contains { $0.contains("hard links") })
            var status = stat()
            stat(victim, &status)
            #expect(status.st_nlink == 1)
        }

        @Test func reopeningTheBrokersOwnFileKeepsItAndASwapIsSeen() throws {
            let path = directory.file("vm1.trace.log")
            let first = try TraceLogFile.open(path)
            close(first.fd)
            let again = try TraceLogFile.open(path)
            defer { close(again.fd) }
            #expect(again.identity == first.identity)
            #expect(again.warnings.isEmpty)
            #expect(rename(path, directory.file("moved")) == 0)
            #expect(!again.isStillAtPath)
            #expect(symlink(directory.file("moved"), path) == 0)
            #expect(!again.isStillAtPath)
        }

        @Test func aDirectoryWritableByOthersIsWarnedAbout() throws {
            let open = directory.file("open")
            mkdir(open, 0o777)
            chmod(open, 0o777)
            let file = try TraceLogFile.open("\(open)/vm1.trace.log")
            close(file.fd)
            #expect(file.warnings.contains { $0.contains("writable by group or others") })
        }
    }
}
