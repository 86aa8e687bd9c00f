import EventLoop
import Glibc
import Testing
@testable import QMPBroker

/// SCM_RIGHTS through real sockets, checked by using the descriptors that arrive: each is a
/// pipe's write end, so writing to it and reading the pipe proves it is the right one, and
/// EOF on the pipe proves that no copy of it was left open anywhere.
@Suite("Transport: descriptor passing")
struct TransportDescriptorPassingTests {
    @Test func descriptorSentByAClientArrivesUsableWithItsCommand() async throws {
        let server = try SocketTestServer(serverLoop: testLoop("test.server"))
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(clientLoop: testLoop("test.client"))
        let pipe = DescriptorTestPipe()
        defer { pipe.closeReadEnd() }
        let command = Array(#"{"execute":"getfd","arguments":{"fdname":"fd0"}}"#.utf8)

        #expect(await client.send(command, fds: [pipe.writeEnd]))
        #expect(await accepted.wait { $0.received == command && $0.receivedFDs.count == 1 })
        let passed = try #require(await accepted.onLoop { $0.receivedFDs }.first)
        #expect(fcntl(passed, F_GETFD) & FD_CLOEXEC != 0, "received with MSG_CMSG_CLOEXEC")
        #expect(await accepted.onLoop { $0.reads.first?.fds } == [passed], "arrives with the command's first byte")

        #expect(writeFully(passed, Array("ping".utf8)))
        #expect(pipe.readAvailable() == Array("ping".utf8))
        _ = Glibc.close(passed)
        #expect(pipe.readAvailable() == [], "the sender closed its copy once sent")
        await client.close()
    }

    @Test func descriptorSentToAClientArrivesUsable() async throws {
        let server = try SocketTestServer(serverLoop: testLoop("test.server"))
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(clientLoop: testLoop("test.client"))
        let pipe = DescriptorTestPipe()
        defer { pipe.closeReadEnd() }

        #expect(await accepted.send(Array(#"{"return": {}}"#.utf8), fds: [pipe.writeEnd]))
        #expect(await client.wait { $0.receivedFDs.count == 1 })
        let passed = try #require(await client.onLoop { $0.receivedFDs }.first)
        #expect(writeFully(passed, Array("pong".utf8)))
        #expect(pipe.readAvailable() == Array("pong".utf8))
        _ = Glibc.close(passed)
        #expect(pipe.readAvailable() == [])
        await client.close()
    }

    @Test func descriptorsStayWithTheirMessagesThroughAQueuedBacklog() async throws {
        let serverLoop = testLoop("test.server")
        let server = try SocketTestServer(serverLoop: serverLoop)
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(
            clientLoop: testLoop("test.client"), clientMaxQueuedBytes: 16 << 20)

        // With the server not reading, most messages queue on the client and go out later,
        // several per sendmsg: each descriptor must still start its own message.
        let hold = LoopHold(serverLoop)
        let messageSize = 2048
        let pipes = (0..<6).map { _ in DescriptorTestPipe() }
        defer { for pipe in pipes { pipe.closeReadEnd() } }
        var messages: [[UInt8]] = []
        for index in 0..<300 {
            let message = patternBytes(count: messageSize, seed: index)
            messages.append(message)
            let fds = index % 50 == 0 ? [pipes[index / 50].writeEnd] : []
            #expect(await client.send(message, fds: fds))
        }
        #expect(await client.onLoop { $0.connection.queuedBytes } > 0, "the backlog path must run")
        hold.release()

        let total = messages.count * messageSize
        #expect(await accepted.wait { $0.received.count == total })
        #expect(await accepted.onLoop { $0.received } == messages.flatMap { $0 })
        let fdReads = await accepted.onLoop { $0.reads.filter { !$0.fds.isEmpty } }
        try #require(fdReads.count == pipes.count)
        for (index, read) in fdReads.enumerated() {
            let messageStart = index * 50 * messageSize
            #expect(read.offset <= messageStart && messageStart < read.offset + read.count,
                    "descriptor \(index) arrives with the first byte of its message")
            #expect(read.fds.count == 1)
            let marker = Array("message \(index * 50)".utf8)
            #expect(writeFully(read.fds[0], marker))
            #expect(pipes[index].readAvailable() == marker)
            _ = Glibc.close(read.fds[0])
            #expect(pipes[index].readAvailable() == [])
        }
        await client.close()
    }

    @Test func moreDescriptorsThanQEMUAcceptsAreDroppedAndTheBytesKept() async throws {
        let server = try SocketTestServer(serverLoop: testLoop("test.server"))
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(clientLoop: testLoop("test.client"))
        let pipe = DescriptorTestPipe()
        defer { pipe.closeReadEnd() }
        let copies = (0..<20).map { _ in dup(pipe.writeEnd) }
        _ = Glibc.close(pipe.writeEnd)
        let command = Array(#"{"execute":"add-fd"}"#.utf8)

        #expect(await client.send(command, fds: copies))
        #expect(await accepted.wait { $0.received == command })
        #expect(await accepted.onLoop { $0.receivedFDs } == [])
        // The kernel closed the 4 that did not fit, the connection the 16 that did, the
        // sender its 20 once sent: nothing holds the write end any more.
        #expect(pipe.readAvailable() == [])
        #expect(await accepted.onLoop { $0.connection.isOpen })
        await client.close()
    }

    @Test func descriptorsQueuedOnAConnectionThatClosesAreClosed() async throws {
        let server = try SocketTestServer(serverLoop: testLoop("test.server"), maxQueuedBytes: 8 << 20)
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(clientLoop: testLoop("test.client"), startClient: false)
        let pipe = DescriptorTestPipe()
        defer { pipe.closeReadEnd() }

        #expect(await accepted.send(patternBytes(count: 2 << 20)))
        #expect(await accepted.send(Array("with fd".utf8), fds: [pipe.writeEnd]))
        #expect(await accepted.onLoop { $0.connection.queuedBytes } > 0, "the descriptor is still queued")
        await accepted.close()
        #expect(pipe.readAvailable() == [], "closing dropped the queued descriptor")
        await client.close()
    }
}
