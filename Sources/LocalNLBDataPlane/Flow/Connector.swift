import CLocalNLB
import Glibc
import LocalNLBModel
import ProxyProtocol

/// Opening a flow: pick the target, make the target socket, bind its source (the client's address
/// or the node's), connect, and put the PROXY header first in line.
extension EventLoop {

    /// The group a new flow of the listener goes to: its one group, or one of its weighted forward's
    /// groups, drawn by weight (docs/target-groups.md §3). The flow stays with it.
    /// With target group stickiness, a client address keeps the group of its last flow while that is
    /// younger than the duration, whatever the weights say now.
    @inline(__always)
    func flowGroupIndex(_ listenerIndex: Int, client: IPAddress) -> Int {
        let total = listeners[listenerIndex].shared.weightTotal
        guard total > 0 else { return listeners[listenerIndex].shared.groupIndex }
        let sticky = listeners[listenerIndex].shared.groupStickyNanoseconds
        let table = sticky > 0 ? listeners[listenerIndex].shared.groupStickiness : nil
        if let table,
            let kept = table.group(
                for: client, now: now,
                valid: { group in listeners[listenerIndex].shared.weighted.contains { $0.index == group } })
        {
            table.remember(kept, for: client, until: now + sticky)
            return kept
        }
        var chosen = listeners[listenerIndex].shared.groupIndex
        var draw = Int(nextTraceRandom() % UInt64(total))
        for entry in listeners[listenerIndex].shared.weighted {
            if draw < entry.weight {
                chosen = entry.index
                break
            }
            draw -= entry.weight
        }
        table?.remember(chosen, for: client, until: now + sticky)
        return chosen
    }

    /// `node`: where the client connected, when `clientFD` cannot say (a TLS flow's local socket pair).
    func startFlow(listenerIndex: Int, clientFD: Int32, client: IPEndpoint, node given: IPEndpoint? = nil) {
        // The listener's fields as locals: a copy of the whole listener would retain its arrays per flow.
        let groupIndex = flowGroupIndex(listenerIndex, client: client.ip)
        let listenerEndpoint = listeners[listenerIndex].shared.endpoint
        let id = takeFlowID()
        groupMetrics[groupIndex].newFlowCount += 1
        listeners[listenerIndex].newFlows += 1
        let node =
            given
            ?? (listenerEndpoint.ip.isUnspecifiedAddress
                ? (Socket.localEndpoint(clientFD) ?? listenerEndpoint) : listenerEndpoint)
        let flow = allocateFlow()
        flow.id = id
        flowOrder.append(id: id, slot: flow.index, udp: false)
        flow.listenerIndex = listenerIndex
        flow.groupIndex = groupIndex
        flow.client = client
        flow.node = node
        flow.clientFD = clientFD
        flow.started = now
        flow.lastActivity = now
        flow.state = .connecting
        liveFlows += 1

        guard
            let targetIndex = groups[groupIndex].pick(
                for: FlowKey(client: client, node: node), nodeZone: listeners[listenerIndex].shared.zone)
        else {
            finish(
                flow, .noTarget, resetClient: true, resetTarget: false, detail: "no registered target takes new flows")
            return
        }
        // Everything read from the group before it is changed: a copy alive across the change would
        // make every new flow copy the group's target list.
        let target = groups[groupIndex].targets[targetIndex].endpoint
        let preserveClientIP = groups[groupIndex].configuration.preserveClientIP
        let unhealthyRouted =
            groups[groupIndex].targets[targetIndex].inFailingOpenZone
            && !groups[groupIndex].targets[targetIndex].isHealthy
        flow.proxyMode = groups[groupIndex].configuration.proxyProtocol
        flow.targetIndex = targetIndex
        let targetFlows = groups[groupIndex].targets[targetIndex].flowCount
        targetFlows.add(1)
        flow.targetFlows = targetFlows
        if unhealthyRouted { groupMetrics[groupIndex].unhealthyRoutingFlowCount += 1 }

        do {
            do {
                flow.targetFD = try Socket.stream(for: target.ip)
            } catch  where (error.errno == .tooManyOpenFiles || error.errno == .fileTableFull) && expiredFlows > 0 {
                // Forgotten flows give their descriptors back before a live one is refused.
                resetExpiredFlows()
                flow.targetFD = try Socket.stream(for: target.ip)
            }
        } catch  where error.errno == .tooManyOpenFiles || error.errno == .fileTableFull {
            groupMetrics[groupIndex].tcpELBResetCount += 1
            let detail = "no descriptor for the target connection (\(error.errno)): raise ulimit -n"
            finish(flow, .outOfDescriptors, resetClient: true, resetTarget: false, detail: detail)
            return
        } catch {
            finish(flow, .connectFailed, resetClient: true, resetTarget: false, detail: "\(error)")
            return
        }
        if let failure = bindSource(flow, target: target, preserveClientIP: preserveClientIP) {
            finish(flow, .sourceBindFailed, resetClient: true, resetTarget: true, detail: failure)
            return
        }
        let connected: Bool
        do {
            connected = try Socket.connect(flow.targetFD, target).isDone
        } catch {
            switch error.errno {
            case .connectionRefused:
                groupMetrics[groupIndex].tcpTargetResetCount += 1
                finish(flow, .connectRefused, resetClient: true, resetTarget: false, detail: "\(error.errno)")
            case .addressNotAvailable:
                groupMetrics[groupIndex].portAllocationErrorCount += 1
                let message =
                    "no local port is free for another flow to target \(target) (\(error.errno)): widen "
                    + "net.ipv4.ip_local_port_range, register more targets, or send fewer concurrent flows"
                warnAtMostEvery10s(&lastPortWarning, message)
                finish(flow, .portAllocationError, resetClient: true, resetTarget: false, detail: message)
            default:
                finish(flow, .connectFailed, resetClient: true, resetTarget: false, detail: "\(error.errno)")
            }
            return
        }
        let backendTLS = listeners[listenerIndex].shared.backendTLS
        do {
            let flowIndex = flow.index
            // EPOLLPRI: an urgent byte stops a recv short, so its event must say so (ReadExtent).
            let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLPRI | CLNB_EPOLLET
            try poller.add(flow.clientFD, events: interest, token: token(.flowClient, flowIndex, flow.generation))
            if backendTLS == nil {
                try poller.add(flow.targetFD, events: interest, token: token(.flowTarget, flowIndex, flow.generation))
            }
        } catch {
            finish(flow, .connectFailed, resetClient: true, resetTarget: true, detail: "\(error)")
            return
        }
        scheduleTimer(flow, at: connectDeadline(flow))
        if let backendTLS {
            // A TLS target group: the loop is the target's TLS client; the flow connects when the handshake has.
            return startTargetTLS(flow, targetFD: flow.targetFD, connected: connected, context: backendTLS)
        }
        if connected { targetConnected(flow) }
    }

    /// Binds the target connection's source: the client's address when preserved, else the node's.
    /// Returns a one-line explanation when that is impossible.
    func bindSource(_ flow: Flow, target: IPEndpoint, preserveClientIP: Bool) -> String? {
        let fd = flow.targetFD
        if preserveClientIP {
            let client = flow.client
            guard client.ip.isIPv6 == target.ip.isIPv6 else {
                return "\(Self.preserveClientIPKey): client \(client) and target \(target) are of different IP families"
            }
            return bindClientAddress(fd, client, otherwise: "; or set \(Self.preserveClientIPKey) to false")
        }
        let source = nodeAddress(for: flow, family: target.ip)
        let routed: IPAddress?
        if let cached = routeSources[target.ip] {
            routed = cached
        } else {
            routed = Socket.routeSource(towards: target)
            routeSources[target.ip] = routed
        }
        // The kernel picks this very address: connect without bind (two system calls fewer per flow).
        if routed == source { return nil }
        Socket.setBindAddressNoPort(fd)
        do { try Socket.bind(fd, IPEndpoint(ip: source, port: 0)) } catch {
            return "cannot bind node address \(source): \(error.errno)"
        }
        return nil
    }

    /// Binds a target socket (TCP or UDP) to the client's address. docs/flows.md §8: a loopback client
    /// address binds without privileges (the kernel picks the port); any other needs IP_TRANSPARENT, and
    /// then keeps the client's port as an NLB does. Nil when bound, else what went wrong and the fix
    /// (`otherwise`: the way out that needs no privilege, where there is one).
    func bindClientAddress(_ fd: Int32, _ client: IPEndpoint, otherwise: String) -> String? {
        if client.ip.isLoopback {
            Socket.setBindAddressNoPort(fd)
            do { try Socket.bind(fd, IPEndpoint(ip: client.ip, port: 0)) } catch {
                return "cannot bind client address \(client.ip): \(error.errno)"
            }
            return nil
        }
        do {
            try Socket.setTransparent(fd, ipv6: client.ip.isIPv6)
        } catch {
            let message =
                "\(Self.preserveClientIPKey) needs IP_TRANSPARENT to send from client \(client) "
                + "(\(error.errno)): run as root or grant CAP_NET_ADMIN (setcap cap_net_admin+ep), and route the "
                + "targets' replies back to this host (README: client IP preservation)" + otherwise
            warnAtMostEvery10s(&lastTransparentWarning, message)
            return message
        }
        do {
            try Socket.bind(fd, client)
        } catch  where error.errno == .addressInUse {
            // The client runs on this machine and holds that port itself: let the kernel choose one.
            Socket.setBindAddressNoPort(fd)
            do { try Socket.bind(fd, IPEndpoint(ip: client.ip, port: 0)) } catch {
                return "cannot bind client address \(client.ip): \(error.errno)"
            }
        } catch {
            return "cannot bind client address \(client): \(error.errno)"
        }
        return nil
    }

    /// The node address a flow leaves from towards a target of `family`: the address the client
    /// reached if it is of that family, else another of the node's (the configuration ensures one).
    func nodeAddress(for flow: Flow, family: IPAddress) -> IPAddress {
        if flow.node.ip.isIPv6 == family.isIPv6 { return flow.node.ip }
        let nodes = listeners[flow.listenerIndex].shared.nodes
        for node in nodes where node.addresses.contains(flow.node.ip) {
            if let address = node.addresses.first(where: { $0.isIPv6 == family.isIPv6 }) { return address }
        }
        return nodes.lazy.flatMap(\.addresses).first { $0.isIPv6 == family.isIPv6 } ?? flow.node.ip
    }

    /// The next flow id, TCP or UDP, unique across loops: loop i of n numbers its flows i+1, i+1+n,
    /// i+1+2n…
    func takeFlowID() -> UInt64 {
        defer { nextFlowID += 1 }
        return nextFlowID &* UInt64(loopCount) &+ UInt64(index) &+ 1
    }

    func allocateFlow() -> Flow {
        flows.take(Flow.init(index:))
    }

    /// The target accepted: the PROXY header (if any) goes first, then bytes move both ways.
    /// `targetEvents`: the event that told the connect finished (nil: it finished at once).
    func targetConnected(_ flow: Flow, targetEvents: UInt32? = nil) {
        flow.state = .established
        flow.lastActivity = now
        scheduleIdleCheck(flow)
        // The client socket inherited TCP_NODELAY from its listener; the target's waits for a second write.
        flow.clientToTarget.noDelay = .beforeSecondWrite
        if flow.proxyMode != .off && !flow.headerBeforeTLS {
            // The header goes into the client→target pipe ahead of any client byte, so it leaves in
            // the same segment as the first payload (on_first_ack_with_payload) or on its own at once.
            let length = groups[flow.groupIndex].writeProxyHeader(
                flow.proxyMode, client: flow.client, node: flow.node, to: copyBuffer)
            guard pipes.acquire(&flow.clientToTarget) else {
                // Out of descriptors: the header waits on the heap and leaves at once, ahead of every
                // client byte (the pipeless path cannot hold it for the first payload).
                flow.clientToTarget.overflow.append(
                    contentsOf: UnsafeRawBufferPointer(start: copyBuffer, count: length))
                return pump(flow, targetToClient: targetEvents.map { $0 & CLNB_EPOLLIN != 0 } ?? true)
            }
            let written = IO.write(flow.clientToTarget.pipeWrite, from: copyBuffer, count: length)
            precondition(written == .moved(length), "an empty pipe takes a PROXY header whole")
            flow.clientToTarget.buffered = length
            flow.clientToTarget.holdUntilPayload =
                groups[flow.groupIndex].configuration.headerPlacement == .onFirstAckWithPayload
        }
        // What the client sent while we connected came with edges already spent: read it whole only if
        // its FIN came too. The target's bytes come with the event that finished the connect: without
        // EPOLLIN there, the target has sent nothing yet, and what it sends later brings its own edge.
        let targetSent = targetEvents.map { $0 & (CLNB_EPOLLIN | CLNB_EPOLLRDHUP | CLNB_EPOLLHUP) != 0 } ?? true
        pump(
            flow, targetToClient: targetSent, readClient: targetEvents == nil || flow.clientClosing ? .toEnd : .once,
            readTarget: targetEvents.map(ReadExtent.init) ?? .toEnd)
    }

    /// Named in the messages of a failed client-IP bind (looked up once).
    static let preserveClientIPKey = TargetGroupConfiguration.attributeIndex.key(
        of: \TargetGroupConfiguration.preserveClientIP)
}
