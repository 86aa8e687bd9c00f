import Glibc
import QMPBroker

/// A private directory under /tmp, removed with everything in it when the value goes away.
/// Unix socket paths must stay under 108 bytes, so the name is short.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/qmpb-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(created != nil, "mkdtemp failed")
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        (try? ChildProcess(["rm", "-rf", path]))?.wait(timeout: 10)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func write(_ name: String, _ text: String) {
        let file = fopen(self.file(name), "w")!
        fputs(text, file)
        fclose(file)
    }

    func read(_ name: String) -> String {
        guard let file = fopen(self.file(name), "r") else { return "" }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count == 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
