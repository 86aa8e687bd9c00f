import EventLoop
import Glibc
import Testing
@testable import QMPBroker

@Suite("Transport: UnixStreamConnection over real sockets")
struct TransportConnectionTests {
    @Test func bytesFlowBothWays() async throws {
        let server = try SocketTestServer(serverLoop: testLoop("test.server"))
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(clientLoop: testLoop("test.client"))
        let command = Array(#"{"execute":"qmp_capabilities"}"#.utf8)
        let reply = Array(#"{"return": {}}"#.utf8)

        #expect(await client.send(command))
        #expect(await accepted.wait { $0.received == command })
        #expect(await accepted.send(reply))
        #expect(await client.wait { $0.received == reply })
        #expect(await client.onLoop { $0.connection.queuedBytes } == 0)
        await client.close()
    }

    @Test func largePayloadSurvivesPartialWritesInOrder() async throws {
        let server = try SocketTestServer(serverLoop: testLoop("test.server"))
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(
            clientLoop: testLoop("test.client"), clientMaxQueuedBytes: 16 << 20)
        let payload = patternBytes(count: 6 << 20)
        let tail = Array("after the big one".utf8)

        let queuedAfterSend = await client.onLoop { endpoint -> Int in
            let payloadAccepted = endpoint.connection.send(payload)
            let tailAccepted = endpoint.connection.send(tail)
            return payloadAccepted && tailAccepted ? endpoint.connection.queuedBytes : -1
        }
        #expect(queuedAfterSend > 0, "6 MiB cannot fit in a socket buffer: the partial-write path must run")
        #expect(await accepted.wait { $0.received.count == payload.count + tail.count })
        #expect(await accepted.onLoop { $0.received } == payload + tail)
        // Runs after the flush that sent the last bytes has finished its bookkeeping.
        #expect(await client.onLoop { $0.connection.queuedBytes } == 0)
        #expect(await client.onLoop { $0.closeReasons } == [])
        await client.close()
    }

    @Test func oneEventQueuedOnManyConnectionsIsStoredOnce() async throws {
        let vmLoop = testLoop("test.vm")
        let server = try SocketTestServer(serverLoop: vmLoop, maxQueuedBytes: 8 << 20)
        defer { server.shutDown() }
        let clientLoop = testLoop("test.clients")
        var clients: [SocketEndpoint] = []
        var serverSides: [SocketEndpoint] = []
        for _ in 0..<3 {
            // Not started: they never read, so the event stays queued.
            let (client, serverSide) = try await server.connectPair(clientLoop: clientLoop, startClient: false)
            clients.append(client)
            serverSides.append(serverSide)
        }
        let event = patternBytes(count: 1 << 20)
        let sharesTheCallersBuffer = await runOnLoop(vmLoop) { [serverSides] () -> [Bool] in
            let original = event.withUnsafeBytes { $0.baseAddress! }
            return serverSides.map(\.connection).map { connection in
                guard connection.send(event), connection.queuedBytes > 0,
                      let head = connection.output.sendableChunks(maxChunks: 1).first
                else { return false }
                let start = head.bytes.withUnsafeBytes { $0.baseAddress! }
                return start == original + (event.count - connection.queuedBytes)
            }
        }
        #expect(sharesTheCallersBuffer == [true, true, true])
        // An idle connection whose handlers capture its owner lives until closed (LeakSanitizer).
        for client in clients { await client.close() }
    }

    @Test func aStuckPeerOverflowsWithoutDisturbingOthersOnTheSameLoop() async throws {
        let vmLoop = testLoop("test.vm")
        let server = try SocketTestServer(serverLoop: vmLoop, maxQueuedBytes: 256 << 10)
        defer { server.shutDown() }
        let clientLoop = testLoop("test.clients")
        // Never started, so it never reads.
        let (stuck, stuckServerSide) = try await server.connectPair(clientLoop: clientLoop, startClient: false)
        let (healthy, healthyServerSide) = try await server.connectPair(clientLoop: clientLoop)

        let event = patternBytes(count: 16 << 10)
        let ping = Array(#"{"event":"PING"}"#.utf8)
        let (sends, queuedBeforeOverflow) = await runOnLoop(vmLoop) { () -> (Int, Int) in
            var sends = 0
            var queued = 0
            while stuckServerSide.connection.send(event) && sends < 10_000 {
                sends += 1
                queued = stuckServerSide.connection.queuedBytes
                // The healthy client is served in the same loop, as the broker's event fan-out is.
                healthyServerSide.connection.send(ping)
            }
            return (sends, queued)
        }
        #expect(sends > 0 && sends < 10_000)
        #expect(queuedBeforeOverflow <= 256 << 10)
        #expect(await stuckServerSide.onLoop { $0.closeReasons } == [.outputOverflow])
        #expect(await stuckServerSide.onLoop { $0.connection.isOpen } == false)
        #expect(await !stuckServerSide.send(event), "sending after close fails without a second onClose")
        #expect(await stuckServerSide.onLoop { $0.closeReasons } == [.outputOverflow])

        // The healthy client got every event, and its connection still works both ways.
        #expect(await healthy.wait { $0.received.count == sends * ping.count })
        #expect(await healthy.send(Array("still here".utf8)))
        #expect(await healthyServerSide.wait { $0.received == Array("still here".utf8) })

        // The overflowed side's descriptor was closed: the stuck client, once it reads, gets
        // what the kernel already held, a prefix of the events in order, then end of file.
        await stuck.start()
        #expect(await stuck.wait { $0.closeReasons == [.peerClosed] })
        let delivered = await stuck.onLoop { $0.received }
        #expect(delivered.count < (sends + 1) * event.count)
        #expect(delivered.indices.allSatisfy { delivered[$0] == event[$0 % event.count] })
        await healthy.close()
    }

    @Test func peerCloseIsReportedExactlyOnce() async throws {
        let server = try SocketTestServer(serverLoop: testLoop("test.server"))
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(clientLoop: testLoop("test.client"))
        await client.close()
        #expect(await client.onLoop { $0.closeReasons } == [.local])
        #expect(await accepted.wait { !$0.closeReasons.isEmpty })
        // Later activity on either side must not report again.
        #expect(await !accepted.send(Array("late".utf8)))
        await accepted.close()
        await client.close()
        #expect(await accepted.onLoop { $0.closeReasons } == [.peerClosed])
        #expect(await client.onLoop { $0.closeReasons } == [.local])
    }

    @Test func bytesSentJustBeforeClosingAreAllDeliveredBeforePeerClosed() async throws {
        let serverLoop = testLoop("test.server")
        let server = try SocketTestServer(serverLoop: serverLoop)
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(clientLoop: testLoop("test.client"))

        // Hold the server's loop so that the bytes and the hangup are both pending when it
        // next looks: the hangup must not end the connection before everything is read.
        let hold = LoopHold(serverLoop)
        let chunks = (0..<3).map { patternBytes(count: 50 << 10, seed: $0) }
        for chunk in chunks {
            #expect(await client.send(chunk))
            #expect(await client.onLoop { $0.connection.queuedBytes } == 0, "the socket buffer takes 150 KiB")
        }
        await client.close()
        hold.release()

        #expect(await accepted.wait { !$0.closeReasons.isEmpty })
        #expect(await accepted.onLoop { $0.received } == chunks.flatMap { $0 })
        #expect(await accepted.onLoop { $0.closeReasons } == [.peerClosed])
    }

    @Test func localCloseAfterADrainedWriteSourceStillClosesTheDescriptor() async throws {
        let server = try SocketTestServer(serverLoop: testLoop("test.server"), maxQueuedBytes: 8 << 20)
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(clientLoop: testLoop("test.client"), startClient: false)

        // Fill the socket so that the write source is created and armed, then let the client
        // drain it so that the source ends up suspended: the state in which a careless close
        // would leak the descriptor (its cancel handler never runs) or crash.
        let payload = patternBytes(count: 2 << 20)
        #expect(await accepted.send(payload))
        #expect(await accepted.onLoop { $0.connection.descriptor.interest.contains(.write) })
        await client.start()
        #expect(await client.wait { $0.received.count == payload.count })
        #expect(await accepted.onLoop { !$0.connection.descriptor.interest.contains(.write) && $0.connection.queuedBytes == 0 })

        // And once more through the same (resumed) source, with the client held so that the
        // kernel's buffer fills again.
        let hold = LoopHold(client.loop)
        #expect(await accepted.send(payload))
        #expect(await accepted.onLoop { $0.connection.descriptor.interest.contains(.write) })
        hold.release()
        #expect(await client.wait { $0.received.count == 2 * payload.count })
        #expect(await accepted.onLoop { !$0.connection.descriptor.interest.contains(.write) })

        await accepted.close()
        #expect(await accepted.onLoop { $0.closeReasons } == [.local])
        #expect(await client.wait { $0.closeReasons == [.peerClosed] }, "the client sees EOF only once the fd is really closed")
    }

    @Test func localCloseWithOutputStillQueuedClosesTheDescriptor() async throws {
        let server = try SocketTestServer(serverLoop: testLoop("test.server"), maxQueuedBytes: 8 << 20)
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(clientLoop: testLoop("test.client"), startClient: false)
        #expect(await accepted.send(patternBytes(count: 2 << 20)))
        #expect(await accepted.onLoop { $0.connection.descriptor.interest.contains(.write) && $0.connection.queuedBytes > 0 })
        await accepted.close()
        #expect(await accepted.onLoop { $0.connection.queuedBytes } == 0)
        await client.start()
        #expect(await client.wait { $0.closeReasons == [.peerClosed] })
    }

    @Test func connectingToAMissingPathThrowsENOENT() {
        let directory = SocketTestDirectory()
        defer { directory.remove() }
        let path = directory.file("absent.sock")
        #expect {
            _ = try UnixStreamConnection.connect(toPath: path, loop: testLoop("test"), maxQueuedBytes: 1024)
        } throws: { error in
            guard let error = error as? SystemCallError else { return false }
            return error.errno == ENOENT && error.description == "connect(\(path)): No such file or directory"
        }
    }

    @Test func peerCredentialsNameThisProcess() async throws {
        let server = try SocketTestServer(serverLoop: testLoop("test.server"))
        defer { server.shutDown() }
        let (client, accepted) = try await server.connectPair(clientLoop: testLoop("test.client"))
        let credentials = await accepted.onLoop { $0.connection.peerCredentials() }
        #expect(credentials == PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()))
        await client.close()
        #expect(await accepted.wait { !$0.closeReasons.isEmpty })
        #expect(await accepted.onLoop { $0.connection.peerCredentials() } == nil)
    }
}
