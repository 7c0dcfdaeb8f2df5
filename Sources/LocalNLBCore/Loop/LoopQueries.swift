import ProxyProtocol

/// What the control API asks of a loop through its mailbox.
extension EventLoop {
    /// This loop's flows, as `GET /flows` lists them.
    func describeOwnFlows() -> [(id: UInt64, json: JSONText)] {
        flows.filter { $0.state != .free }.map { flow in
            let group = groups[flow.groupIndex]
            let target = flow.targetIndex >= 0 ? group.targets[flow.targetIndex].endpoint.description : nil
            let state: String =
                switch flow.state {
                case .connecting: "connecting"
                case .established: "established"
                case .expired: "expired"
                case .free: "free"
                }
            return (
                flow.id,
                .object([
                    ("id", .integer(Int64(flow.id))),
                    ("targetGroup", .string(group.configuration.name)),
                    ("listener", .string(listeners[flow.listenerIndex].shared.endpoint.description)),
                    ("client", .string(flow.client.description)),
                    ("node", .string(flow.node.description)),
                    ("target", .optional(target)),
                    ("source", .optional(sourceAddress(flow)?.description)),
                    ("proxyHeader", .optional(flow.header.map(hexString))),
                    ("bytesFromClient", .integer(Int64(flow.clientToTarget.bytes))),
                    ("bytesFromTarget", .integer(Int64(flow.targetToClient.bytes))),
                    ("ageSeconds", .number(Double(now &- flow.started) / 1e9)),
                    ("state", .string(state)),
                ])
            )
        }
    }
}
