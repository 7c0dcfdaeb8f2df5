import LocalNLBModel
import ProxyProtocol

/// One flow as `GET /flows` lists it: plain values a loop copies out, so the JSON is built on the
/// control plane's thread, not in front of the loop's next event.
package struct FlowSummary: Sendable {
    package var id: UInt64
    package var targetGroup: String
    package var listener: IPEndpoint
    package var client: IPEndpoint
    package var node: IPEndpoint
    package var target: IPEndpoint?
    package var source: IPEndpoint?
    package var proxyMode: ProxyProtocolMode
    var bytesFromClient: UInt64
    var bytesFromTarget: UInt64
    var ageSeconds: Double
    package var state: String
    package var transport: TransportProtocol = .tcp
    /// An application load balancer's connection: the request in flight (`GET /path`), if any.
    package var request: String?

    package var json: JSONText {
        .object(
            [
                ("id", .integer(Int64(id))),
                ("protocol", .string(transport == .udp ? "UDP" : transport.isHTTP ? "HTTP" : "TCP")),
                ("targetGroup", .string(targetGroup)),
                ("listener", .string(listener.description)),
                ("client", .string(client.description)),
                ("node", .string(node.description)),
                ("target", .optional(target?.description)),
                ("source", .optional(source?.description)),
                (
                    "proxyHeader",
                    .optional(RoutingGroup.proxyHeader(proxyMode, client: client, node: node).map(hexString))
                ),
                ("bytesFromClient", .integer(Int64(bytesFromClient))),
                ("bytesFromTarget", .integer(Int64(bytesFromTarget))),
                ("ageSeconds", .number(ageSeconds)),
                ("state", .string(state)),
            ] + (transport.isHTTP ? [("request", JSONText.optional(request))] : []))
    }
}

/// What the control API asks of a loop through its mailbox.
extension EventLoop {
    /// Up to `limit` of this loop's flows with ids above `marker`, lowest ids first, and whether it
    /// has more: a page costs the loop a binary search and the page, however many flows it carries.
    package func describeOwnFlows(after marker: UInt64, limit: Int) -> (flows: [FlowSummary], more: Bool) {
        var candidates: [(id: UInt64, index: Int, udp: Bool, http: Bool)] = []
        var more = false
        var position = flowOrder.firstPosition(after: marker)
        while position < flowOrder.entries.count {
            let entry = flowOrder.entries[position]
            position += 1
            guard isLive(entry) else { continue }
            if candidates.count == limit {
                more = true
                break
            }
            candidates.append((entry.id, entry.slot, entry.udp, entry.http))
        }
        let page = candidates.prefix(limit).map { candidate -> FlowSummary in
            if candidate.http {
                let session = httpSessions[candidate.index]
                let listener = listeners[session.listenerIndex].shared.endpoint
                let state: String =
                    session.tunnel ? "tunnel" : session.responsePhase == .idle ? "idle" : "request"
                var request: String?
                if session.responsePhase != .idle, !session.loggedRequest.isEmpty {
                    request = session.loggedRequest
                }
                var summary = FlowSummary(
                    id: session.id,
                    targetGroup: groups.indices.contains(session.groupIndex)
                        ? groups[session.groupIndex].configuration.name : "",
                    listener: listener,
                    client: session.client, node: session.node, target: session.routedTarget, source: nil,
                    proxyMode: .off, bytesFromClient: 0, bytesFromTarget: 0,
                    ageSeconds: Double(now &- session.started) / 1e9, state: state, transport: .http)
                summary.request = request
                return summary
            }
            if candidate.udp {
                let flow = udpFlows[candidate.index]
                let listener = listeners[flow.key.listener].shared.endpoint
                return FlowSummary(
                    id: flow.id, targetGroup: groups[flow.groupIndex].configuration.name, listener: listener,
                    client: flow.key.client, node: listener, target: flow.target,
                    source: Socket.localEndpoint(flow.targetFD), proxyMode: .off, bytesFromClient: flow.bytesFromClient,
                    bytesFromTarget: flow.bytesFromTarget, ageSeconds: Double(now &- flow.started) / 1e9,
                    state: "established", transport: .udp)
            }
            let flow = flows[candidate.index]
            let group = groups[flow.groupIndex]
            let state: String =
                switch flow.state {
                case .connecting: "connecting"
                case .established: "established"
                case .expired: "expired"
                case .free: "free"
                }
            return FlowSummary(
                id: flow.id, targetGroup: group.configuration.name,
                listener: listeners[flow.listenerIndex].shared.endpoint, client: flow.client, node: flow.node,
                target: flow.targetIndex >= 0 ? group.targets[flow.targetIndex].endpoint : nil,
                source: sourceAddress(flow), proxyMode: flow.proxyMode, bytesFromClient: flow.clientToTarget.bytes,
                bytesFromTarget: flow.targetToClient.bytes, ageSeconds: Double(now &- flow.started) / 1e9,
                state: state)
        }
        return (page, more)
    }

    /// Whether the flow an id-order entry names is still the one in its slot, and open.
    func isLive(_ entry: FlowOrder.Entry) -> Bool {
        if entry.http {
            let session = httpSessions[entry.slot]
            return session.inUse && session.id == entry.id
        }
        if entry.udp {
            let flow = udpFlows[entry.slot]
            return flow.targetFD >= 0 && flow.id == entry.id
        }
        let flow = flows[entry.slot]
        return flow.state != .free && flow.id == entry.id
    }
}
