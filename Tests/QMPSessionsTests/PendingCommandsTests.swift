@testable import QMPSessions
import QMPWire
import Testing

/// The id-rewrite table as data: who waits for what, and what becomes of it.
@Suite struct PendingCommandsTests {
    /// A client's in-band command with an id written as QEMU writes it.
    static func clientCommand(_ client: Int, _ command: String, id: Int64, slot: ReplyOrder.Slot?,
                              followUps: [PendingCommand.FollowUp] = [], deadline: UInt64 = .max) -> PendingCommand {
        PendingCommand(client: client, command: command, id: .integer(id), idBytes: Array("\(id)".utf8), slot: slot,
                       followUps: followUps, deadline: deadline)
    }

    @Test func idsAreUniqueAndResolveOnceWithTheClientsData() throws {
        var table = PendingCommands()
        let status = Self.clientCommand(7, "query-status", id: 1, slot: 0)
        let schema = Self.clientCommand(7, "query-qmp-schema", id: 2, slot: 1, followUps: [.transformReply])
        let a = table.register(status)
        let b = table.register(schema)
        #expect(a != b)
        let resolved = table.resolve(b)
        let entry = try #require(resolved)
        #expect(entry.command == schema)
        #expect(entry.command.clientIDBytes == Array("2".utf8))
        #expect(entry.command.slot == 1)
        #expect(entry.id == b)
        let again = table.resolve(b), none = table.resolve(nil)
        #expect(again == nil && none == nil)
        #expect(table.drain().map(\.command) == [status])
    }

    @Test func drainReturnsEverythingInSendOrder() {
        var table = PendingCommands()
        for client in 0..<20 { _ = table.register(Self.clientCommand(client, "query-status", id: 1, slot: nil)) }
        let drained = table.drain()
        #expect(drained.map(\.command.requester) == (0..<20).map { .client($0) })
        #expect(table.drain().isEmpty)
    }

    @Test func unansweredCommandsExpireOldestFirstAndLateRepliesFindNothing() {
        var table = PendingCommands()
        let first = table.register(Self.clientCommand(1, "a", id: 1, slot: 0, deadline: 100))
        let second = table.register(Self.clientCommand(1, "b", id: 2, slot: 1, deadline: 150))
        _ = table.register(Self.clientCommand(1, "c", id: 3, slot: 2))
        #expect(table.nextDeadline == 100)
        let early = table.expire(now: 99), due = table.expire(now: 160)
        #expect(early.isEmpty)
        #expect(due.map(\.command.command) == ["a", "b"])
        let late = [table.resolve(first), table.resolve(second)]
        #expect(late.allSatisfy { $0 == nil })  // the late replies are dropped
        #expect(table.nextDeadline == nil)
        #expect(table.drain().map(\.command.command) == ["c"])
    }

    @Test func theBrokersOwnCommandsCarryTheirPurpose() throws {
        var table = PendingCommands()
        let stop = table.register(PendingCommand(broker: .stopVM, command: "stop"))
        let resolvedStop = table.resolve(stop)
        let stopEntry = try #require(resolvedStop)
        #expect(stopEntry.id == stop)
        #expect(stopEntry.command.requester == .broker(.stopVM))
        #expect(stopEntry.command.clientID == nil && stopEntry.command.clientIDBytes == nil && stopEntry.command.slot == nil)
    }
}
