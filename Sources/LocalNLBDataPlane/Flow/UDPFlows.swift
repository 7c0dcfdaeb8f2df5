import CLocalNLB
import Glibc
import LocalNLBModel
import ProxyProtocol

/// A UDP flow's key: the client's address and port, and the listener socket (address and port) it
/// sent to. With the protocol, the 5-tuple.
package struct UDPFlowKey: Hashable {
    package var client: IPEndpoint
    package var listener: Int
}

/// One UDP flow: every datagram of its 5-tuple goes to one target, through a socket connected to it
/// from the client's address; what the target sends back goes to the client from the listener's.
package final class UDPFlow {
    package let index: Int
    package var generation: UInt32 = 0
    package var id: UInt64 = 0
    package var key = UDPFlowKey(client: IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0), listener: 0)
    var targetFD: Int32 = -1
    package var groupIndex = 0
    package var targetIndex = -1
    package var target = IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)
    var targetFlows: SharedCounter?
    package var started: UInt64 = 0
    var lastActivity: UInt64 = 0
    var bytesFromClient: UInt64 = 0
    var bytesFromTarget: UInt64 = 0

    package init(index: Int) { self.index = index }
}

/// UDP and TCP_UDP listeners (docs/flows.md §10): a flow is the 5-tuple, its target picked by a hash of
/// it, the client's address always kept; a flow is forgotten after 120 s without a datagram. Datagrams
/// pass through one buffer of the loop: nothing is allocated per datagram.
extension EventLoop {
    /// The datagrams waiting on a UDP listener socket, taken many per call (recvmmsg), each passed to
    /// its flow's target.
    func receiveDatagrams(listenerIndex: Int) {
        let fd = listeners[listenerIndex].fd
        guard fd >= 0 else { return }
        let batch = datagramBatch ?? DatagramBatch()
        datagramBatch = batch
        for _ in 0..<8 {
            let received = batch.receive(fd)
            for index in 0..<received {
                guard let client = batch.source(index) else { continue }
                let (payload, count) = batch.payload(index)
                forward(payload, count: count, from: client, listenerIndex: listenerIndex)
            }
            if received < DatagramBatch.slots { return }
        }
    }

    package func forward(_ payload: UnsafeMutableRawPointer, count: Int, from client: IPEndpoint, listenerIndex: Int) {
        let key = UDPFlowKey(client: client, listener: listenerIndex)
        let flow: UDPFlow
        if let index = udpFlowTable[key] {
            flow = udpFlows[index]
        } else {
            guard let started = startUDPFlow(key) else { return }
            flow = started
        }
        flow.lastActivity = now
        flow.bytesFromClient &+= UInt64(count)
        groupMetrics[flow.groupIndex].processedBytesUDP &+= UInt64(count)
        groupMetrics[flow.groupIndex].processedPackets &+= 1
        switch IO.sendDatagram(flow.targetFD, payload, count: count) {
        case .sent, .dropped: break
        case .refused: endUDPFlow(flow, .connectRefused, detail: "the target answered ICMP port unreachable")
        }
    }

    /// A new flow: the target by flow hash (stickiness first), a socket from the client's address
    /// connected to it. Nil (the datagram dropped) when none can be made.
    func startUDPFlow(_ key: UDPFlowKey) -> UDPFlow? {
        guard !draining else { return nil }
        let groupIndex = flowGroupIndex(key.listener, client: key.client.ip)
        let node = listeners[key.listener].shared.endpoint
        // Past `udpFlowLimit` (each flow holds a socket), datagrams that would start a flow are dropped,
        // and the log says so.
        guard liveUDPFlows < options.udpFlowLimit else {
            warnAtMostEvery10s(
                &lastUDPBoundWarning,
                "UDP: \(options.udpFlowLimit) flows on event loop \(index), the most one loop keeps; datagrams "
                    + "that would start another are dropped until some idle out")
            return nil
        }
        groupMetrics[groupIndex].newFlowCountUDP += 1
        guard
            let targetIndex = groups[groupIndex].pick(
                for: FlowKey(client: key.client, node: node), nodeZone: listeners[key.listener].shared.zone,
                algorithm: .flowHash)
        else { return nil }
        let target = groups[groupIndex].targets[targetIndex].endpoint
        guard key.client.ip.isIPv6 == target.ip.isIPv6, let fd = try? Socket.datagram(for: target.ip) else {
            return nil
        }
        // docs/flows.md §10: the client's address is always kept for UDP (no setting turns it off).
        if bindClientAddress(fd, key.client, otherwise: "") != nil {
            closeDescriptor(fd)
            return nil
        }
        do {
            _ = try Socket.connect(fd, target)
        } catch {
            closeDescriptor(fd)
            return nil
        }
        let flow = udpFlows.take(UDPFlow.init(index:))
        flow.id = takeFlowID()
        flowOrder.append(id: flow.id, slot: flow.index, udp: true)
        flow.key = key
        flow.targetFD = fd
        flow.groupIndex = groupIndex
        flow.targetIndex = targetIndex
        flow.target = target
        flow.started = now
        flow.bytesFromClient = 0
        flow.bytesFromTarget = 0
        let counter = groups[groupIndex].targets[targetIndex].flowCount
        counter.add(1)
        flow.targetFlows = counter
        do {
            try poller.add(fd, events: CLNB_EPOLLIN, token: token(.udpTarget, flow.index, flow.generation & 0xFF_FFFF))
        } catch {
            releaseUDPFlow(flow)
            return nil
        }
        udpFlowTable[key] = flow.index
        liveUDPFlows += 1
        groupMetrics[groupIndex].activeFlowCountUDP += 1
        return flow
    }

    /// What the target sends back goes to the client, from the listener's address and port.
    func targetDatagrams(_ flow: UDPFlow) {
        let listenerFD = listeners[flow.key.listener].fd
        for _ in 0..<64 {
            switch IO.receiveDatagram(flow.targetFD, into: datagramBuffer, capacity: 65536) {
            case .datagram(let count):
                flow.lastActivity = now
                flow.bytesFromTarget &+= UInt64(count)
                groupMetrics[flow.groupIndex].processedBytesUDP &+= UInt64(count)
                groupMetrics[flow.groupIndex].processedPackets &+= 1
                if listenerFD >= 0 {
                    Socket.sendDatagram(listenerFD, datagramBuffer, count: count, to: flow.key.client)
                }
            case .none:
                return
            case .refused:
                // ICMP port unreachable from the target: this flow ends, nothing else does.
                return endUDPFlow(flow, .connectRefused, detail: "the target answered ICMP port unreachable")
            }
        }
    }

    func expireUDPFlows() {
        guard liveUDPFlows > 0 else { return }
        for flow in udpFlows where flow.targetFD >= 0 {
            if now &- flow.lastActivity >= listeners[flow.key.listener].shared.idleNanoseconds {
                endUDPFlow(flow, .idleTimeout, detail: "120 s without a datagram (AWS's fixed UDP timeout)")
            }
        }
    }

    func endUDPFlows(_ reason: CloseReason) {
        for flow in udpFlows where flow.targetFD >= 0 { endUDPFlow(flow, reason, detail: nil) }
    }

    func endUDPFlow(_ flow: UDPFlow, _ reason: CloseReason, detail: String?) {
        if options.flowLog.isEnabled || options.onFlowEnd != nil {
            let record = FlowRecord(
                id: flow.id, listener: listeners[flow.key.listener].shared.endpoint, client: flow.key.client,
                node: listeners[flow.key.listener].shared.endpoint, target: flow.target,
                source: Socket.localEndpoint(flow.targetFD), proxyHeader: nil, bytesFromClient: flow.bytesFromClient,
                bytesFromTarget: flow.bytesFromTarget, durationSeconds: Double(now &- flow.started) / 1e9,
                closeReason: reason, detail: detail, transport: .udp)
            options.flowLog.write(record)
            options.onFlowEnd?(record)
        }
        udpFlowTable[flow.key] = nil
        liveUDPFlows -= 1
        groupMetrics[flow.groupIndex].activeFlowCountUDP -= 1
        poller.remove(flow.targetFD)
        releaseUDPFlow(flow)
    }

    func releaseUDPFlow(_ flow: UDPFlow) {
        flow.targetFlows?.add(-1)
        flow.targetFlows = nil
        if flow.targetFD >= 0 { closeDescriptor(flow.targetFD) }
        flow.targetFD = -1
        flow.generation &+= 1
        udpFlows.release(flow.index)
        flowOrder.flowEnded { isLive($0) }
    }
}
