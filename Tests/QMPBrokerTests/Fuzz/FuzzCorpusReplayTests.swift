import BrokerTesting
import Foundation
@testable import QMPBroker
import Testing

/// Every committed fuzz input, seeds and crash cases alike, through the fuzzer's own
/// path: a crash input that breaks again fails here, in the ordinary suite.
@Suite struct FuzzCorpusReplayTests {
    static let root: String = {
        let parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        return parts[..<parts.lastIndex(of: "Tests")!].joined(separator: "/") + "/Fuzz"
    }()

    static var inputs: [String] {
        ["seeds", "crashes"].flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(folder)")) ?? [])
                .filter { !$0.hasPrefix(".") }.sorted().map { "\(folder)/\($0)" }
        }
    }

    @Test func theCorpusIsThere() {
        #expect(Self.inputs.count >= 10)
    }

    @Test(arguments: inputs)
    func replays(_ name: String) throws {
        let bytes = try #require(FileManager.default.contents(atPath: "\(Self.root)/\(name)"))
        let replies = [UInt8](bytes).withUnsafeBufferPointer { WireExercise.run($0) }
        #expect(replies >= 0)
    }
}
