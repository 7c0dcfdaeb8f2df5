import CLocalNLB
import CLocalNLBTLS
import Glibc
import LocalNLBModel
import ProxyProtocol

/// A client of a TLS listener: its socket and OpenSSL session, and (once the handshake is done) the
/// loop's end of a local socket pair whose other end is the flow's client side. The flow then runs as
/// any TCP flow does (target pick, PROXY header, splice to the target, timers, flow log); this bridge
/// decrypts what the client sends into the pair and encrypts what comes back out of it. The handshake
/// runs non-blocking in the loop (`SSL_ERROR_WANT_READ`/`WANT_WRITE`) and has `handshakeTimeout` to
/// finish; no target is connected before it has.
package final class TLSBridge {
    let index: Int
    var generation: UInt32 = 0
    var clientFD: Int32 = -1
    var plainFD: Int32 = -1
    var ssl: OpaquePointer?
    var listenerIndex = 0
    var client = IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)
    var node = IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)
    var handshakeDeadline: UInt64 = 0
    var handshaking = false
    /// Decrypted bytes the pair has not taken yet.
    var toPlain: [UInt8] = []
    /// Bytes from the pair OpenSSL has not taken yet (a write is retried with the same bytes).
    var toClient: [UInt8] = []
    var clientEOF = false
    var plainEOF = false
    /// Towards a target of a `TLS` group (the loop is the TLS client): `clientFD` is then the target's
    /// socket, `flow` the flow whose target side is the pair, connecting until the handshake is done.
    var towardsTarget = false
    var tcpConnecting = false
    var flow: Flow?
    var flowGeneration: UInt32 = 0
    /// Towards a target: the PROXY header, sent on the TCP connection before the TLS handshake, as an
    /// NLB prepends it to the TCP data (`sentPreamble` of it gone so far).
    var preamble: [UInt8] = []
    var sentPreamble = 0
    /// Towards an HTTPS target of an application load balancer's session (no flow): its pair end is the
    /// session's target connection.
    var forHTTP = false
    var groupIndex = 0
    /// The listener's server side, for mutual TLS's identity filters after the handshake.
    var context: TLSContext?
    var inUse: Bool { clientFD >= 0 || plainFD >= 0 }

    init(index: Int) { self.index = index }
}

extension EventLoop {
    /// TLS records are at most 16 KiB of plaintext: one read of each side moves at most that.
    static let tlsChunk = 16_384
    /// AWS's TLS listeners give a client 10 s to finish its handshake.
    static let handshakeTimeout: UInt64 = 10_000_000_000

    func startTLS(listenerIndex: Int, clientFD: Int32, client: IPEndpoint, context: TLSContext) {
        let bridge = tlsBridges.take { TLSBridge(index: $0) }
        bridge.generation &+= 1
        bridge.listenerIndex = listenerIndex
        bridge.client = client
        let endpoint = listeners[listenerIndex].shared.endpoint
        bridge.node = endpoint.ip.isUnspecifiedAddress ? (Socket.localEndpoint(clientFD) ?? endpoint) : endpoint
        bridge.clientFD = clientFD
        bridge.handshaking = true
        bridge.handshakeDeadline = now + Self.handshakeTimeout
        bridge.clientEOF = false
        bridge.plainEOF = false
        bridge.toPlain.removeAll(keepingCapacity: true)
        bridge.toClient.removeAll(keepingCapacity: true)
        guard let ssl = SSL_new(context.context) else {
            return endTLS(bridge, reset: true, reason: "no memory for a TLS session")
        }
        bridge.context = context
        bridge.ssl = ssl
        SSL_set_fd(ssl, clientFD)
        SSL_set_accept_state(ssl)
        handshakingBridges += 1
        let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLET
        do {
            try poller.add(clientFD, events: interest, token: token(.tlsClient, bridge.index, bridge.generation))
        } catch {
            return endTLS(bridge, reset: true, reason: "\(error)")
        }
        advanceTLS(bridge)
    }

    func tlsEvent(_ bridge: TLSBridge, events: UInt32, fromPlain: Bool) {
        guard bridge.inUse else { return }
        if fromPlain && bridge.handshaking && events & (CLNB_EPOLLHUP | CLNB_EPOLLRDHUP | CLNB_EPOLLERR) != 0 {
            // The flow ended (its connect timer, a reset client) before the target's handshake did.
            return endTLS(bridge, reset: true, reason: nil)
        }
        if bridge.tcpConnecting {
            guard events & (CLNB_EPOLLOUT | CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0 else { return }
            if events & (CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0, let error = Socket.pendingError(bridge.clientFD) {
                return targetTLSFailed(
                    bridge, error == .connectionRefused ? .connectRefused : .connectFailed, detail: "\(error)",
                    handshake: false)
            }
            bridge.tcpConnecting = false
        }
        advanceTLS(bridge)
    }

    /// A flow towards a `TLS` group: the loop connects to the target and is its TLS client; the flow's
    /// target side is a local socket pair, which joins the flow once the handshake is done.
    func startTargetTLS(_ flow: Flow, targetFD: Int32, connected: Bool, context: TLSClientContext) {
        let pair: (Int32, Int32)
        do {
            pair = try Socket.streamPair()
        } catch {
            return finish(flow, .connectFailed, resetClient: true, resetTarget: true, detail: "\(error)")
        }
        let bridge = tlsBridges.take { TLSBridge(index: $0) }
        bridge.generation &+= 1
        bridge.towardsTarget = true
        bridge.tcpConnecting = !connected
        bridge.flow = flow
        bridge.flowGeneration = flow.generation
        bridge.client = flow.client
        bridge.node = flow.node
        bridge.listenerIndex = flow.listenerIndex
        bridge.clientEOF = false
        bridge.plainEOF = false
        bridge.toPlain.removeAll(keepingCapacity: true)
        bridge.toClient.removeAll(keepingCapacity: true)
        bridge.clientFD = targetFD
        bridge.plainFD = pair.0
        bridge.preamble.removeAll(keepingCapacity: true)
        bridge.sentPreamble = 0
        if flow.proxyMode != .off {
            let length = groups[flow.groupIndex].writeProxyHeader(
                flow.proxyMode, client: flow.client, node: flow.node, to: copyBuffer)
            bridge.preamble.append(contentsOf: UnsafeRawBufferPointer(start: copyBuffer, count: length))
            flow.headerBeforeTLS = true
        }
        bridge.handshaking = true
        bridge.handshakeDeadline = .max  // the flow's connect timer bounds it
        handshakingBridges += 1
        flow.targetFD = pair.1
        guard let ssl = SSL_new(context.context) else {
            endTLS(bridge, reset: true, reason: nil)
            return finish(flow, .connectFailed, resetClient: true, resetTarget: true, detail: "no memory for TLS")
        }
        bridge.ssl = ssl
        SSL_set_fd(ssl, targetFD)
        SSL_set_connect_state(ssl)
        let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLET
        do {
            try poller.add(targetFD, events: interest, token: token(.tlsClient, bridge.index, bridge.generation))
            try poller.add(pair.0, events: interest, token: token(.tlsPlain, bridge.index, bridge.generation))
        } catch {
            endTLS(bridge, reset: true, reason: nil)
            return finish(flow, .connectFailed, resetClient: true, resetTarget: true, detail: "\(error)")
        }
        if !bridge.tcpConnecting { advanceTLS(bridge) }
    }

    /// An application load balancer's connection to an `HTTPS` target: the loop is its TLS client behind a
    /// socket pair, whose other end it returns for the session (nil when that cannot be made).
    func startHTTPTargetTLS(
        targetFD: Int32, connected: Bool, context: TLSClientContext, listenerIndex: Int, groupIndex: Int,
        client: IPEndpoint, node: IPEndpoint
    ) -> Int32? {
        guard let pair = try? Socket.streamPair() else { return nil }
        let bridge = tlsBridges.take { TLSBridge(index: $0) }
        bridge.generation &+= 1
        bridge.towardsTarget = true
        bridge.forHTTP = true
        bridge.groupIndex = groupIndex
        bridge.tcpConnecting = !connected
        bridge.flow = nil
        bridge.client = client
        bridge.node = node
        bridge.listenerIndex = listenerIndex
        bridge.clientEOF = false
        bridge.plainEOF = false
        bridge.toPlain.removeAll(keepingCapacity: true)
        bridge.toClient.removeAll(keepingCapacity: true)
        bridge.clientFD = targetFD
        bridge.plainFD = pair.0
        bridge.preamble.removeAll(keepingCapacity: true)
        bridge.sentPreamble = 0
        bridge.handshaking = true
        bridge.handshakeDeadline = .max  // the session's idle timeout bounds it (a 504)
        handshakingBridges += 1
        guard let ssl = SSL_new(context.context) else {
            closeDescriptor(pair.1)
            endTLS(bridge, reset: true, reason: nil)
            return nil
        }
        bridge.ssl = ssl
        SSL_set_fd(ssl, targetFD)
        SSL_set_connect_state(ssl)
        let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLET
        do {
            try poller.add(targetFD, events: interest, token: token(.tlsClient, bridge.index, bridge.generation))
            try poller.add(pair.0, events: interest, token: token(.tlsPlain, bridge.index, bridge.generation))
        } catch {
            closeDescriptor(pair.1)
            endTLS(bridge, reset: true, reason: nil)
            return nil
        }
        if !bridge.tcpConnecting { advanceTLS(bridge) }
        return pair.1
    }

    /// The target's TCP connect or TLS handshake failed: the flow ends as a failed connect does.
    func targetTLSFailed(_ bridge: TLSBridge, _ reason: CloseReason, detail: String, handshake: Bool) {
        if bridge.forHTTP {
            // The session sees its pair end close before a response head: 502.
            if handshake { groupMetrics[bridge.groupIndex].targetTLSNegotiationErrorCount += 1 }
            if reason == .connectRefused { groupMetrics[bridge.groupIndex].tcpTargetResetCount += 1 }
            return endTLS(bridge, reset: true, reason: nil)
        }
        let flow = bridge.flow
        let generation = bridge.flowGeneration
        if handshake {
            count(listeners[bridge.listenerIndex].shared.groupIndex) { $0.targetTLSNegotiationErrorCount += 1 }
        }
        if reason == .connectRefused {
            count(listeners[bridge.listenerIndex].shared.groupIndex) { $0.tcpTargetResetCount += 1 }
        }
        endTLS(bridge, reset: true, reason: nil)
        if let flow, flow.generation == generation, flow.state == .connecting {
            finish(flow, reason, resetClient: true, resetTarget: true, detail: detail)
        }
    }

    /// Moves what can move: the handshake, then both directions, until each would block.
    func advanceTLS(_ bridge: TLSBridge) {
        guard let ssl = bridge.ssl else { return }
        if bridge.handshaking {
            if bridge.tcpConnecting { return }
            while bridge.sentPreamble < bridge.preamble.count {
                let sent = bridge.preamble[bridge.sentPreamble...].withUnsafeBytes {
                    IO.send(bridge.clientFD, from: $0.baseAddress!, count: $0.count)
                }
                switch sent {
                case .moved(let n): bridge.sentPreamble += n
                case .wouldBlock: return
                case .end, .failed:
                    return targetTLSFailed(bridge, .connectFailed, detail: "the PROXY header", handshake: false)
                }
            }
            let result = SSL_do_handshake(ssl)
            if result != 1 {
                let error = SSL_get_error(ssl, result)
                if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return }
                let cause = TLSError("TLS handshake").description
                if bridge.towardsTarget {
                    return targetTLSFailed(
                        bridge, .connectFailed, detail: "TLS handshake with the target: \(cause)", handshake: true)
                }
                countTLSNegotiationError(bridge)
                return endTLS(bridge, reset: true, reason: cause)
            }
            bridge.handshaking = false
            handshakingBridges -= 1
            if !bridge.towardsTarget, let context = bridge.context, !context.identityFilters.isEmpty {
                // Mutual TLS: the certificate verified; now it must match one of the identity filters.
                let certificate = SSL_get1_peer_certificate(ssl)
                defer { if let certificate { X509_free(certificate) } }
                guard let certificate, context.admits(certificate) else {
                    countTLSNegotiationError(bridge)
                    return endTLS(bridge, reset: true, reason: "the client certificate matches no identity filter")
                }
            }
            if bridge.towardsTarget && bridge.forHTTP {
                // An HTTPS target of an application load balancer: the session writes and reads the pair's
                // other end already; the bytes move from here on.
            } else if bridge.towardsTarget {
                guard let flow = bridge.flow, flow.generation == bridge.flowGeneration, flow.state == .connecting else {
                    return endTLS(bridge, reset: true, reason: nil)
                }
                // The target's side of the flow is ready: the flow takes it as a finished connect.
                let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLPRI | CLNB_EPOLLET
                do {
                    try poller.add(
                        flow.targetFD, events: interest, token: token(.flowTarget, flow.index, flow.generation))
                } catch {
                    return targetTLSFailed(bridge, .connectFailed, detail: "\(error)", handshake: false)
                }
                targetConnected(flow)
            } else {
                guard startTLSFlow(bridge) else { return }
            }
        }
        // Client → pair: decrypt while OpenSSL has records and the pair takes the bytes.
        while !bridge.clientEOF {
            if !bridge.toPlain.isEmpty {
                guard flushToPlain(bridge) else { return }
                if !bridge.toPlain.isEmpty { break }
            }
            let read = SSL_read(ssl, copyBuffer, Int32(Self.tlsChunk))
            if read > 0 {
                bridge.toPlain.append(contentsOf: UnsafeRawBufferPointer(start: copyBuffer, count: Int(read)))
                continue
            }
            let error = SSL_get_error(ssl, read)
            if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { break }
            if error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
                // close_notify, or the TCP FIN without one: either way the client is done sending.
                ERR_clear_error()
                bridge.clientEOF = true
                if bridge.plainFD >= 0 { _ = Glibc.shutdown(bridge.plainFD, Int32(SHUT_WR)) }
                break
            }
            return endTLS(bridge, reset: true, reason: TLSError("TLS read").description)
        }
        // Pair → client: encrypt what the flow sends back.
        while bridge.plainFD >= 0 {
            if !bridge.toClient.isEmpty {
                let written = bridge.toClient.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
                if written > 0 {
                    bridge.toClient.removeFirst(Int(written))
                    continue
                }
                let error = SSL_get_error(ssl, written)
                if error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ { return }
                return endTLS(bridge, reset: true, reason: TLSError("TLS write").description)
            }
            if bridge.plainEOF { break }
            switch IO.receive(bridge.plainFD, into: copyBuffer, count: Self.tlsChunk) {
            case .moved(let n):
                bridge.toClient.append(contentsOf: UnsafeRawBufferPointer(start: copyBuffer, count: n))
            case .end:
                bridge.plainEOF = true
                // The flow is done sending: close_notify, then the FIN.
                SSL_shutdown(ssl)
                _ = Glibc.shutdown(bridge.clientFD, Int32(SHUT_WR))
            case .wouldBlock:
                return
            case .failed:
                // The flow reset its client side: the TLS client gets a RST too.
                return endTLS(bridge, reset: true, reason: nil)
            }
        }
        if bridge.plainEOF && bridge.toClient.isEmpty && (bridge.clientEOF || bridge.plainFD < 0) {
            endTLS(bridge, reset: false, reason: nil)
        } else if bridge.plainEOF && bridge.toClient.isEmpty && bridge.toPlain.isEmpty {
            // The flow ended first: nothing more can go the client's way, and nothing it sends has anywhere to go.
            endTLS(bridge, reset: false, reason: nil)
        }
    }

    /// Sends decrypted bytes into the pair; false when the bridge ended.
    func flushToPlain(_ bridge: TLSBridge) -> Bool {
        guard bridge.plainFD >= 0 else {
            bridge.toPlain.removeAll()
            return true
        }
        let outcome = bridge.toPlain.withUnsafeBytes { IO.send(bridge.plainFD, from: $0.baseAddress!, count: $0.count) }
        switch outcome {
        case .moved(let n): bridge.toPlain.removeFirst(n)
        case .wouldBlock: break
        case .end, .failed:
            endTLS(bridge, reset: true, reason: nil)
            return false
        }
        return true
    }

    /// The handshake is done: the flow starts on the pair's other end, as an accepted client would.
    func startTLSFlow(_ bridge: TLSBridge) -> Bool {
        let pair: (Int32, Int32)
        do {
            pair = try Socket.streamPair()
        } catch {
            endTLS(bridge, reset: true, reason: "\(error)")
            return false
        }
        bridge.plainFD = pair.0
        let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLET
        do {
            try poller.add(pair.0, events: interest, token: token(.tlsPlain, bridge.index, bridge.generation))
        } catch {
            closeDescriptor(pair.1)
            endTLS(bridge, reset: true, reason: "\(error)")
            return false
        }
        if listeners[bridge.listenerIndex].shared.http != nil {
            let ssl = bridge.ssl
            startHTTP(
                listenerIndex: bridge.listenerIndex, clientFD: pair.1, client: bridge.client, node: bridge.node,
                tls: (
                    ssl.flatMap { SSL_get_version($0) }, ssl.flatMap { SSL_CIPHER_get_name(SSL_get_current_cipher($0)) }
                ))
        } else {
            startFlow(listenerIndex: bridge.listenerIndex, clientFD: pair.1, client: bridge.client, node: bridge.node)
        }
        return true
    }

    /// Closes the client (with a RST when `reset`), the pair's end and the session. `reason`: why a
    /// client was refused (a handshake that failed or took too long), for the log.
    func endTLS(_ bridge: TLSBridge, reset: Bool, reason: String?) {
        guard bridge.inUse || bridge.ssl != nil else { return }
        if bridge.handshaking {
            bridge.handshaking = false
            handshakingBridges -= 1
        }
        if let reason {
            warnAtMostEvery10s(&lastTLSWarning, "TLS client \(bridge.client) on \(bridge.node): \(reason)")
        }
        if let ssl = bridge.ssl {
            SSL_free(ssl)
            bridge.ssl = nil
        }
        if bridge.clientFD >= 0 {
            poller.remove(bridge.clientFD)
            reset ? Socket.closeWithReset(bridge.clientFD) : closeDescriptor(bridge.clientFD)
            bridge.clientFD = -1
        }
        if bridge.plainFD >= 0 {
            poller.remove(bridge.plainFD)
            closeDescriptor(bridge.plainFD)
            bridge.plainFD = -1
        }
        bridge.toPlain.removeAll()
        bridge.toClient.removeAll()
        bridge.flow = nil
        bridge.context = nil
        bridge.towardsTarget = false
        bridge.forHTTP = false
        bridge.tcpConnecting = false
        bridge.generation &+= 1
        tlsBridges.release(bridge.index)
    }

    /// Handshakes past their time end with a RST (a stalled or trickled ClientHello holds nothing).
    func expireTLSHandshakes() {
        guard handshakingBridges > 0 else { return }
        for bridge in tlsBridges where bridge.handshaking && now >= bridge.handshakeDeadline {
            countTLSNegotiationError(bridge)
            endTLS(bridge, reset: true, reason: "no TLS handshake within 10 s")
        }
    }

    func countTLSNegotiationError(_ bridge: TLSBridge) {
        count(listeners[bridge.listenerIndex].shared.groupIndex) { $0.clientTLSNegotiationErrorCount += 1 }
    }

    func closeTLSBridges() {
        for bridge in tlsBridges where bridge.inUse { endTLS(bridge, reset: true, reason: nil) }
    }
}
