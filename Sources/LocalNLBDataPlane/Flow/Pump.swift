import CLocalNLB
import Glibc
import LocalNLBModel
import ProxyProtocol

/// Moving bytes: the recv/send and splice state machine of each direction, FINs and RSTs passed on as
/// AWS does, and the end of a flow.
extension EventLoop {
    func flowEvent(_ flow: Flow, fromClient: Bool, events: UInt32) {
        switch flow.state {
        case .free:
            return
        case .expired:
            expiredFlowEvent(flow, fromClient: fromClient, events: events)
        case .connecting:
            if fromClient {
                // Data or FIN from the client waits in its socket until the target is up; a reset does not.
                if events & CLNB_EPOLLERR != 0
                    || (events & CLNB_EPOLLHUP != 0 && Socket.pendingError(flow.clientFD) != nil)
                {
                    groupMetrics[flow.groupIndex].tcpClientResetCount += 1
                    finish(flow, .clientRST, resetClient: false, resetTarget: true, detail: nil)
                } else if events & (CLNB_EPOLLRDHUP | CLNB_EPOLLHUP) != 0 {
                    flow.clientClosing = true
                }
                return
            }
            guard events & (CLNB_EPOLLOUT | CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0 else { return }
            // A failed connect always comes with EPOLLERR: writable alone means connected, no
            // getsockopt(SO_ERROR) needed.
            if events & (CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0, let error = Socket.pendingError(flow.targetFD) {
                // docs/flows.md §5: a target that refuses means a RST for the client.
                let reason: CloseReason = error == .connectionRefused ? .connectRefused : .connectFailed
                groupMetrics[flow.groupIndex].tcpTargetResetCount += 1
                finish(flow, reason, resetClient: true, resetTarget: false, detail: "\(error)")
                return
            }
            targetConnected(flow, targetEvents: events)
        case .established:
            if events & CLNB_EPOLLERR != 0 {
                let fd = fromClient ? flow.clientFD : flow.targetFD
                if Socket.pendingError(fd) != nil {
                    sideReset(flow, client: fromClient)
                    return
                }
            }
            // Only the directions this event can move: readable means this side's bytes (or FIN) can
            // go on; writable matters only if bytes are waiting for this side. An EPOLLOUT edge after
            // each ACK is thus no syscall at all.
            let readable = events & (CLNB_EPOLLIN | CLNB_EPOLLRDHUP | CLNB_EPOLLHUP) != 0
            let writable = events & (CLNB_EPOLLOUT | CLNB_EPOLLHUP) != 0
            let waiting =
                writable && (fromClient ? flow.targetToClient.hasWaitingBytes : flow.clientToTarget.hasWaitingBytes)
            let extent = ReadExtent(events)
            if fromClient {
                pump(flow, clientToTarget: readable, targetToClient: waiting, readClient: extent)
            } else {
                pump(flow, clientToTarget: waiting, targetToClient: readable, readTarget: extent)
            }
        }
    }

    package enum PumpOutcome {
        case ok
        case sourceReset
        case destinationReset
    }

    /// How far to read a source this time.
    package enum ReadExtent {
        /// One read: bytes that come later bring an edge of their own.
        case once
        /// Until EAGAIN or EOF, even after a short read: a FIN may be pending (it brings no edge of its
        /// own behind bytes), or no event says what is waiting.
        case toEnd
        /// The event showed the source's FIN and nothing else amiss (no reset, no urgent byte): a recv
        /// shorter than the buffer has read every byte before the FIN, so the FIN counts as read without
        /// the recv that would return 0.
        case toQueuedFIN

        /// What a flow socket's epoll event says. A short recv proves the queue empty except at an
        /// urgent byte (EPOLLPRI), and after the FIN no byte can join it.
        package init(_ events: UInt32) {
            if events & (CLNB_EPOLLRDHUP | CLNB_EPOLLHUP) == 0 {
                self = .once
            } else if events & (CLNB_EPOLLHUP | CLNB_EPOLLERR | CLNB_EPOLLPRI) == 0 {
                self = .toQueuedFIN
            } else {
                self = .toEnd
            }
        }
    }

    /// Moves what can move in both directions without blocking, then ends the flow if both are done.
    func pump(
        _ flow: Flow, clientToTarget: Bool = true, targetToClient: Bool = true, readClient: ReadExtent = .toEnd,
        readTarget: ReadExtent = .toEnd
    ) {
        let generation = flow.generation
        defer {
            // A flow that ended in this call has been counted by `release` (and reset since).
            if flow.generation == generation {
                let moved = flow.takeUncountedBytes()
                if moved > 0 {
                    groupMetrics[flow.groupIndex].processedBytes &+= moved
                    if flow.state == .established { flow.lastActivity = now }
                }
            }
        }
        if clientToTarget {
            let outcome = pumpDirection(
                &flow.clientToTarget, from: flow.clientFD, to: flow.targetFD, extent: readClient,
                closesNext: flow.targetToClient.finSent)
            if outcome != .ok { return endFlow(flow, after: outcome, fromClient: true) }
        }
        if flow.clientToTarget.sourceEOF && flow.firstFIN == nil { flow.firstFIN = .clientFIN }
        if targetToClient {
            let outcome = pumpDirection(
                &flow.targetToClient, from: flow.targetFD, to: flow.clientFD, extent: readTarget,
                closesNext: flow.clientToTarget.finSent)
            if outcome != .ok { return endFlow(flow, after: outcome, fromClient: false) }
        }
        if flow.targetToClient.sourceEOF && flow.firstFIN == nil { flow.firstFIN = .targetFIN }
        if flow.clientToTarget.finSent && flow.targetToClient.finSent {
            finish(flow, flow.firstFIN ?? .clientFIN, resetClient: false, resetTarget: false, detail: nil)
        }
    }

    /// `closesNext`: the other direction is finished, so this one's FIN ends the flow and the close
    /// that follows sends it (no shutdown call).
    func pumpDirection(
        _ d: inout Direction, from source: Int32, to destination: Int32, extent: ReadExtent, closesNext: Bool
    ) -> PumpOutcome {
        if !d.overflow.isEmpty {
            let outcome = flushOverflow(&d, to: destination)
            guard outcome == .ok else { return outcome }
            // The destination is full: its EPOLLOUT brings the rest, and the source waits till then.
            if !d.overflow.isEmpty { return .ok }
        }
        if d.sourceEOF && d.buffered == 0 {
            passOnFIN(&d, to: destination, closesNext: closesNext)
            return .ok
        }
        defer { pipes.release(&d) }
        if !d.splicing && d.buffered == 0 {
            switch copyDirection(&d, from: source, to: destination, extent: extent) {
            case .ok: break
            case let outcome: return outcome
            }
            if !d.splicing {
                passOnFIN(&d, to: destination, closesNext: closesNext)
                return .ok
            }
        }
        guard pipes.acquire(&d) else {
            // Out of descriptors: no pipe, so this flow goes on through the loop's buffer alone. A flow
            // that exists never dies for want of a descriptor.
            d.splicing = false
            let outcome = copyDirection(&d, from: source, to: destination, extent: .toEnd, pipeless: true)
            passOnFIN(&d, to: destination, closesNext: closesNext)
            return outcome
        }
        while true {
            var progressed = false
            if !d.sourceEOF && d.buffered < pipes.splicePipeSize {
                switch IO.splice(from: source, to: d.pipeWrite, count: pipes.splicePipeSize - d.buffered) {
                case .moved(let n):
                    d.buffered += n
                    d.bytes += UInt64(n)
                    d.holdUntilPayload = false
                    progressed = true
                    if n < Self.smallRead { d.splicing = false }
                case .end:
                    d.sourceEOF = true
                    d.holdUntilPayload = false
                    progressed = true
                case .wouldBlock:
                    break
                case .failed:
                    return .sourceReset
                }
            }
            if d.buffered > 0 && !d.holdUntilPayload {
                d.willWrite(to: destination)
                switch IO.splice(from: d.pipeRead, to: destination, count: d.buffered) {
                case .moved(let n):
                    d.buffered -= n
                    progressed = true
                case .end, .wouldBlock:
                    break
                case .failed:
                    return .destinationReset
                }
            }
            if !progressed { break }
        }
        passOnFIN(&d, to: destination, closesNext: closesNext)
        return .ok
    }

    /// Small messages: one recv into the loop's buffer, one send. A recv that fills the buffer turns
    /// the direction to splicing (the caller goes on with it); what send cannot take now waits in the
    /// direction's pipe, and the splice path delivers it.
    /// `pipeless`: no pipe could be had; the direction copies until the source is empty or the
    /// destination full (what it could not take waits in `overflow`), and stays on this path.
    func copyDirection(
        _ d: inout Direction, from source: Int32, to destination: Int32, extent: ReadExtent, pipeless: Bool = false
    ) -> PumpOutcome {
        while true {
            let received: Int
            switch IO.receive(source, into: copyBuffer, count: Self.copyBufferSize) {
            case .moved(let n): received = n
            case .end:
                d.sourceEOF = true
                return .ok
            case .wouldBlock: return .ok
            case .failed: return .sourceReset
            }
            switch sendCopied(&d, received, to: destination) {
            case .ok: break
            case let outcome: return outcome
            }
            if extent == .toQueuedFIN && received < Self.copyBufferSize {
                // What send could not take waits in the pipe or on the heap, ahead of the FIN.
                d.sourceEOF = true
                return .ok
            }
            if pipeless {
                d.splicing = false
                if !d.overflow.isEmpty { return .ok }
            } else if d.splicing || extent == .once {
                return .ok
            }
        }
    }

    /// Sends what waits in `overflow` (the pipeless path's leftovers).
    func flushOverflow(_ d: inout Direction, to destination: Int32) -> PumpOutcome {
        while !d.overflow.isEmpty {
            d.willWrite(to: destination)
            let sent = d.overflow.withUnsafeBytes { IO.send(destination, from: $0.baseAddress!, count: $0.count) }
            switch sent {
            case .moved(let n): d.overflow.removeFirst(n)
            case .wouldBlock: return .ok
            case .end, .failed: return .destinationReset
            }
        }
        return .ok
    }

    /// Sends `received` bytes of the copy buffer on; see `copyDirection`.
    func sendCopied(_ d: inout Direction, _ received: Int, to destination: Int32) -> PumpOutcome {
        d.bytes += UInt64(received)
        var sent = 0
        sending: while sent < received {
            d.willWrite(to: destination)
            switch IO.send(destination, from: copyBuffer + sent, count: received - sent) {
            case .moved(let n): sent += n
            case .wouldBlock: break sending
            case .end, .failed: return .destinationReset
            }
        }
        if sent < received {
            // The rest goes into the (empty) pipe, which holds a whole buffer; EPOLLOUT sends it on.
            let rest = received - sent
            guard pipes.acquire(&d) else {
                // No pipe (out of descriptors): the rest waits on the heap instead.
                d.overflow.append(contentsOf: UnsafeRawBufferPointer(start: copyBuffer + sent, count: rest))
                return .ok
            }
            let written = IO.write(d.pipeWrite, from: copyBuffer + sent, count: rest)
            precondition(written == .moved(rest), "an empty pipe takes a whole copy buffer")
            d.buffered = rest
            d.splicing = true
            return .ok
        }
        if received == Self.copyBufferSize { d.splicing = true }
        return .ok
    }

    /// AWS passes a FIN on once everything before it has been delivered. When it is the flow's last,
    /// the flow ends at once and closing the socket sends it (its receive queue is empty: its peer's
    /// FIN was read), so no shutdown call.
    func passOnFIN(_ d: inout Direction, to destination: Int32, closesNext: Bool) {
        if d.sourceEOF && d.buffered == 0 && d.overflow.isEmpty && !d.finSent {
            if !closesNext { Socket.shutdownWrite(destination) }
            d.finSent = true
        }
    }

    /// Ends a flow after a direction failed: a reset of either side is passed on (`sideReset`).
    func endFlow(_ flow: Flow, after outcome: PumpOutcome, fromClient: Bool) {
        switch outcome {
        case .ok: return
        case .sourceReset: sideReset(flow, client: fromClient)
        case .destinationReset: sideReset(flow, client: !fromClient)
        }
    }

    /// One side reset (or failed): AWS passes the RST to the other side.
    func sideReset(_ flow: Flow, client: Bool) {
        if client {
            groupMetrics[flow.groupIndex].tcpClientResetCount += 1
            finish(flow, .clientRST, resetClient: false, resetTarget: true, detail: nil)
        } else {
            groupMetrics[flow.groupIndex].tcpTargetResetCount += 1
            finish(flow, .targetRST, resetClient: true, resetTarget: false, detail: nil)
        }
    }

    /// Ends a flow: closes (or resets) both sockets, returns pipes and slot, writes the flow log.
    package func finish(_ flow: Flow, _ reason: CloseReason, resetClient: Bool, resetTarget: Bool, detail: String?) {
        writeRecord(flow, reason, detail: detail)
        releaseTarget(flow)
        if flow.clientFD >= 0 { resetClient ? Socket.closeWithReset(flow.clientFD) : closeDescriptor(flow.clientFD) }
        if flow.targetFD >= 0 { resetTarget ? Socket.closeWithReset(flow.targetFD) : closeDescriptor(flow.targetFD) }
        flow.clientFD = -1
        flow.targetFD = -1
        release(flow)
    }

    func writeRecord(_ flow: Flow, _ reason: CloseReason, detail: String?) {
        guard options.flowLog.isEnabled || options.onFlowEnd != nil else { return }
        sourceAddress(flow)
        let group = groups[flow.groupIndex]
        let record = FlowRecord(
            id: flow.id, listener: listeners[flow.listenerIndex].shared.endpoint, client: flow.client, node: flow.node,
            target: flow.targetIndex >= 0 ? group.targets[flow.targetIndex].endpoint : nil, source: flow.source,
            proxyHeader: flow.header, bytesFromClient: flow.clientToTarget.bytes,
            bytesFromTarget: flow.targetToClient.bytes, durationSeconds: Double(now &- flow.started) / 1e9,
            closeReason: reason, detail: detail)
        options.flowLog.write(record)
        options.onFlowEnd?(record)
    }

    /// The target connection's local address, asked of the kernel only when someone reads it.
    @discardableResult
    func sourceAddress(_ flow: Flow) -> IPEndpoint? {
        if flow.source == nil && flow.targetFD >= 0 && flow.state != .connecting {
            flow.source = Socket.localEndpoint(flow.targetFD)
        }
        return flow.source
    }

    /// The flow no longer counts against its target (it ended, or was forgotten by idle expiry).
    func releaseTarget(_ flow: Flow) {
        flow.targetFlows?.add(-1)
        flow.targetFlows = nil
        flow.targetIndex = -1
        pipes.release(&flow.clientToTarget, discardingBytes: true)
        pipes.release(&flow.targetToClient, discardingBytes: true)
    }

    package func release(_ flow: Flow) {
        groupMetrics[flow.groupIndex].processedBytes &+= flow.takeUncountedBytes()
        if flow.state == .expired { expiredFlows -= 1 }
        flow.generation &+= 1
        flow.reset()
        timers.cancel(flow.index)
        flows.release(flow.index)
        flowOrder.flowEnded { isLive($0) }
        liveFlows -= 1
        if draining && liveFlows == 0 && liveHTTPSessions == 0 { finished = true }
    }
}
