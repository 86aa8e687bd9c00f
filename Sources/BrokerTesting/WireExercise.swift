import QMPSessions
import QMPWire

/// Drives one input through both wire paths the way the broker would, for the fuzzer
/// (`Fuzz/main.swift`) and for the unit test that replays its seeds and crash inputs.
/// Upstream: the bytes as a VMM's output through `LineSplitter` and `UpstreamLine` (id
/// splicing). Downstream: QEMU's JSON dialect through `QMPInputReader` (framer, lexer,
/// parser, limits), every value through `ClientSession` (envelope checks, negotiation,
/// command mode), every reply through QEMU's JSON writer.
///
/// The input is cut into reads at 0xFF bytes in positions divisible by 7 (the byte is
/// dropped), so framing across reads is exercised with the same corpus. Returns the
/// number of replies the broker would write.
package enum WireExercise {
    @discardableResult
    package static func run(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var replies = 0
        var reader = QMPInputReader()
        var session = ClientSession(oobOffered: true, localCommands: ["query-broker", "vfio-device-add"])
        var chunks: [ArraySlice<UInt8>] = []
        var start = 0
        for (index, byte) in bytes.enumerated() where byte == 0xFF && index % 7 == 0 {
            chunks.append(ArraySlice(bytes[start..<index]))
            start = index + 1
        }
        chunks.append(ArraySlice(bytes[start...]))
        var framer = LineSplitter.qmp
        for chunk in chunks {
            Array(chunk).withUnsafeBytes { raw in
                framer.feed(raw) { line in
                    guard let upstream = UpstreamLine(ArraySlice(line)) else { return }
                    _ = upstream.replacingID(with: Array("{\"a\": [1]}".utf8))
                    _ = upstream.has("return")
                    _ = upstream.brokerID
                }
            }
        }
        for chunk in chunks {
            Array(chunk).withUnsafeBytes { raw in
                reader.feed(raw) { input in
                    let action = switch input {
                    case .value(let value): session.received(value)
                    case .error(let desc): session.parseError(desc)
                    }
                    switch action {
                    case .reply(let reply):
                        let wire = reply.wireMessage()
                        precondition(wire.last == 0x0A, "a reply must end its line")
                        replies += 1
                    case .forward(let request), .handleLocally(let request):
                        // What the broker would send upstream: the message with a broker id.
                        let message = request.message
                        let clientID = request.id.map(QEMUJSONWriter.write)
                        message["id"] = .integer(1)
                        let wire = message.wireMessage()
                        if let line = UpstreamLine(ArraySlice(wire)), let clientID {
                            _ = line.replacingID(with: clientID)
                        }
                        _ = request.errorReply(QMPError("fuzz")).wireMessage()
                    }
                }
            }
        }
        return replies
    }
}
