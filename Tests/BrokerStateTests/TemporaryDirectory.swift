import Foundation

/// Runs `body` with a fresh directory under the system temp dir, removed afterwards.
/// A scope rather than a `deinit`, so the directory cannot vanish while a store still
/// reopens files in it.
func withTemporaryDirectory<T>(_ body: (TemporaryDirectory) throws -> T) throws -> T {
    let directory = try TemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory.path) }
    return try body(directory)
}

struct TemporaryDirectory {
    let path: String

    fileprivate init() throws {
        path = FileManager.default.temporaryDirectory.path + "/broker-state-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }
}
