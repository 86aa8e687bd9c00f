import Foundation
import Glibc
import Testing

@testable import BrokerState

/// The error history is nobody else's business: the state file and its WAL and SHM
/// files are created 0600 whatever the umask allows, and an old 0644 file is narrowed.
@Suite(.serialized) struct FileModeTests {
    func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o777
    }

    @Test func newStateFilesAreOwnerOnly() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            let previous = umask(0o022)
            defer { umask(previous) }
            let store = try StateStore(path: path)
            try store.save(.sample())
            try store.saveState(vm: "vm1", id: "gpu0", .flagged)
            #expect(mode(path) == 0o600)
            #expect(mode(path + "-wal") == 0o600)
            #expect(mode(path + "-shm") == 0o600)
            withExtendedLifetime(store) {}
        }
    }

    @Test func anOldWorldReadableFileIsNarrowed() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            do { _ = try StateStore(path: path) }
            chmod(path, 0o644)
            let store = try StateStore(path: path)
            try store.save(.sample())
            #expect(mode(path) == 0o600)
            #expect(mode(path + "-wal") == 0o600)
            withExtendedLifetime(store) {}
        }
    }
}
