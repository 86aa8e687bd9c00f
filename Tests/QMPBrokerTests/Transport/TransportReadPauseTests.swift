import EventLoop
import Glibc
import Testing
@testable import QMPBroker

/// Backpressure at the transport: replies the peer asked for are queued past the bound
/// while reading pauses; once the peer has read them, reading resumes and input sent
/// meanwhile arrives, in order.
@Suite("Transport: reading pauses while requested output is queued")
struct TransportReadPauseTests {
    @Test func requestedOutputPausesReadingInsteadOfOverflowing() async throws {
        let vmLoop = testLoop("test.vm")
        let server = try SocketTestServer(serverLoop: vmLoop, maxQueuedBytes: 256 << 10)
        defer { server.shutDown() }
        let (peer, served) = try await server.connectPair(clientLoop: testLoop("test.peer"), startClient: false)
        await served.onLoop { $0.connection.readPauseThreshold = 64 << 10 }
        let reply = patternBytes(count: 16 << 10)
        let (accepted, paused, queued) = await served.onLoop { endpoint -> (Bool, Bool, Int) in
            var accepted = true
            for _ in 0..<64 { accepted = endpoint.connection.send(reply, requested: true) && accepted }  // 1 MiB
            return (accepted, endpoint.connection.readPaused, endpoint.connection.queuedBytes)
        }
        #expect(accepted, "replies are never an overflow")
        #expect(paused)
        #expect(queued > 256 << 10, "past the bound that unsolicited output may not pass")
        #expect(await served.onLoop { $0.closeReasons }.isEmpty)

        // Input the peer sends while paused waits in the socket; once the peer reads, it arrives.
        let input = Array(#"{"execute":"query-status"}"#.utf8)
        #expect(await peer.send(input))
        await peer.start()
        #expect(await peer.wait { $0.received.count == 64 * reply.count })
        #expect(await served.wait { $0.received == input })
        #expect(await served.onLoop { $0.connection.readPaused } == false)
        await peer.close()
    }

    @Test func unsolicitedOutputStillOverflows() async throws {
        let vmLoop = testLoop("test.vm")
        let server = try SocketTestServer(serverLoop: vmLoop, maxQueuedBytes: 256 << 10)
        defer { server.shutDown() }
        let (peer, served) = try await server.connectPair(clientLoop: testLoop("test.peer"), startClient: false)
        let event = patternBytes(count: 16 << 10)
        let sends = await served.onLoop { endpoint -> Int in
            endpoint.connection.readPauseThreshold = 64 << 10
            var sends = 0
            while endpoint.connection.send(event) && sends < 1000 { sends += 1 }
            return sends
        }
        #expect(sends < 1000)
        #expect(await served.onLoop { $0.closeReasons } == [.outputOverflow])
        await peer.close()  // an idle connection lives until closed (LeakSanitizer)
    }
}
