import LocalNLBModel
import ProxyProtocol
import Synchronization

/// `stickiness.type` `source_ip`: the target each client IP last went to, shared by the event loops
/// (locked only when stickiness is on).
package final class StickyTable: Sendable {
    static let capacity = 65536
    private let targets = Mutex<[IPAddress: Int]>([:])

    package func target(for ip: IPAddress) -> Int? { targets.withLock { $0[ip] } }

    func remember(_ index: Int, for ip: IPAddress) {
        targets.withLock {
            if $0.count >= Self.capacity { $0.removeAll(keepingCapacity: true) }
            $0[ip] = index
        }
    }

    package func removeAll() { targets.withLock { $0.removeAll() } }

    package init() {}
}

/// A network load balancer listener's target group stickiness (docs/target-groups.md §3): the group each
/// client address last started a flow in, and until when it stays there. Shared by the loops (locked
/// only when the listener has group stickiness) and kept across republishes of the listener.
package final class GroupStickyTable: Sendable {
    private let groups = Mutex<[IPAddress: (group: Int, until: UInt64)]>([:])

    /// The group `client` is kept on at `now`, if any; `valid` says whether the action still has it.
    package func group(for client: IPAddress, now: UInt64, valid: (Int) -> Bool) -> Int? {
        groups.withLock { table in
            guard let entry = table[client], entry.until > now, valid(entry.group) else { return nil }
            return entry.group
        }
    }

    /// Keeps `client` on `group` until `until` (each new flow starts the duration again).
    package func remember(_ group: Int, for client: IPAddress, until: UInt64) {
        groups.withLock {
            if $0.count >= StickyTable.capacity { $0.removeAll(keepingCapacity: true) }
            $0[client] = (group, until)
        }
    }

    package init() {}
}

/// What a target is chosen by: the flow's addresses.
public struct FlowKey: Sendable {
    public var client: IPEndpoint
    public var node: IPEndpoint

    public init(client: IPEndpoint, node: IPEndpoint) {
        self.client = client
        self.node = node
    }

    /// FNV-1a over protocol (TCP), source and destination address and port: deterministic across runs,
    /// so a test can predict it; a real NLB hashes the same 5-tuple (docs/target-groups.md §2).
    public var hash: UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        mix(6)
        for byte in client.ip.bytes { mix(byte) }
        mix(UInt8(client.port >> 8))
        mix(UInt8(client.port & 0xFF))
        for byte in node.ip.bytes { mix(byte) }
        mix(UInt8(node.port >> 8))
        mix(UInt8(node.port & 0xFF))
        return hash
    }
}

/// What a pick reads of a target: whether it takes new flows, its zone, its flows.
public protocol RoutableTarget {
    var takesNewFlows: Bool { get }
    var zone: String { get }
    var activeFlows: Int { get }
}

extension Target: RoutableTarget {}

/// A target as the loops see it: what a pick and a new flow read, nothing of its health checks.
package struct RoutedTarget: RoutableTarget, Sendable {
    package let endpoint: IPEndpoint
    /// The target's flow count, shared by every loop and the control plane.
    package let flowCount: SharedCounter
    package let takesNewFlows: Bool
    package let zone: String
    /// Its zone (or group) is failing open: a flow to it while it is not healthy counts as
    /// UnHealthyRoutingFlowCount.
    package let inFailingOpenZone: Bool
    package let isHealthy: Bool
    /// What an application load balancer's stickiness cookie names this target by (docs/alb.md §21).
    package let stickyToken: UInt64
    /// Slow start (docs/alb.md §23): from `slowStartSince` to `slowStartUntil` on the loops' clock; 0: none.
    package let slowStartSince: UInt64
    package let slowStartUntil: UInt64
    package var activeFlows: Int { flowCount.current }

    /// The part of a full share of requests the target takes at `now`: below 1 during slow start.
    package func share(at now: UInt64) -> Double {
        guard now < slowStartUntil else { return 1 }
        return Double(now &- slowStartSince) / Double(slowStartUntil - slowStartSince)
    }

    package init(_ target: Target) {
        endpoint = target.endpoint
        stickyToken = UInt64(ResourceNames.id("sticky/\(target.endpoint)"), radix: 16) ?? 0
        flowCount = target.flowCount
        takesNewFlows = target.takesNewFlows
        zone = target.zone
        inFailingOpenZone = target.inFailingOpenZone
        isHealthy = target.state == .healthy
        slowStartSince = target.slowStartSince
        slowStartUntil = target.slowStartUntil
    }
}

/// Picks a target for each new flow by the group's algorithm. Plain Swift, no sockets: deterministic
/// given the same events.
public struct TargetSelector: Sendable {
    /// Where round robin, and the tie-break of least connections, continues: one cursor for every
    /// loop, shared by the copies of this selector they hold. Two loops picking at the same instant may
    /// start from the same place; the next pick moves on.
    private let position = SharedCounter()
    public var cursor: Int { position.current }

    public init() {}

    /// The index of the target `algorithm` chooses, or nil when no target takes new flows.
    /// `zone`: with cross-zone load balancing off, the node's zone; only its targets (and those in
    /// `all`) are candidates. nil: every zone's.
    /// `admit`: asked once of each target a pick would take; a target it refuses is passed over this
    /// time (slow start, docs/alb.md §23).
    /// `draw`: a random number for `.random` from the caller's generator (an event loop's, no system
    /// call); nil: the system's.
    public func pick<T: RoutableTarget>(
        from targets: [T], for key: FlowKey, using algorithm: LoadBalancingAlgorithm, zone: String? = nil,
        draw: UInt64? = nil, admit: (Int) -> Bool = { _ in true }
    ) -> Int? {
        let count = targets.count
        guard count > 0 else { return nil }
        let cursor = position.current
        @inline(__always) func candidate(_ index: Int) -> Bool {
            guard targets[index].takesNewFlows else { return false }
            if let zone, targets[index].zone != zone && targets[index].zone != "all" { return false }
            return admit(index)
        }
        switch algorithm {
        case .leastConnections:
            // Least active flows; ties go to the first at or after the cursor, so equal targets rotate.
            var best: Int?
            for step in 0..<count {
                let index = (cursor + step) % count
                guard candidate(index) else { continue }
                if best == nil || targets[index].activeFlows < targets[best!].activeFlows { best = index }
            }
            if let best { position.value.store((best + 1) % count, ordering: .relaxed) }
            return best
        case .roundRobin:
            for step in 0..<count {
                let index = (cursor + step) % count
                if candidate(index) {
                    position.value.store((index + 1) % count, ordering: .relaxed)
                    return index
                }
            }
            return nil
        case .flowHash:
            let eligible = targets.indices.filter(candidate)
            guard !eligible.isEmpty else { return nil }
            return eligible[Int(key.hash % UInt64(eligible.count))]
        case .random:
            // Counted, then the chosen one found again: no list made per request.
            var eligible = 0
            for index in 0..<count where candidate(index) { eligible += 1 }
            guard eligible > 0 else { return nil }
            var chosen = draw.map { Int($0 % UInt64(eligible)) } ?? Int.random(in: 0..<eligible)
            for index in 0..<count where candidate(index) {
                if chosen == 0 { return index }
                chosen -= 1
            }
            return nil
        }
    }
}

/// A target group as the loops route by it: immutable once published (the selector's cursor and the
/// sticky table, shared by every loop, aside). Built by the control plane for each publish.
package struct RoutingGroup: Sendable {
    package let configuration: TargetGroupConfiguration
    package let targets: [RoutedTarget]
    /// Cross-zone load balancing as in force: off, a node picks among its own zone's targets.
    package let crossZone: Bool
    /// The group's PROXY v2 header for IPv4 and for IPv6 flows, encoded once (nil: not v2).
    package let headerTemplates: (v4: ProxyV2Template?, v6: ProxyV2Template?)
    package let selector: TargetSelector
    /// `stickiness.type` `source_ip`: the target each client IP last went to.
    package let stickyTargets: StickyTable
    /// When the last of the targets' slow starts ends (0: none is in slow start).
    package let slowStartEnds: UInt64
    /// What the `AWSALBTG` cookie of target group stickiness names this group by (docs/alb.md §21).
    package let stickyToken: UInt64

    /// Picks a target for a new flow: sticky first (when enabled and still taking flows), then the algorithm.
    /// `nodeZone`: the zone of the node the client reached; with cross-zone load balancing off, only
    /// that zone's targets are picked.
    package func pick(
        for key: FlowKey, nodeZone: String = "", algorithm: LoadBalancingAlgorithm? = nil, draw: UInt64? = nil
    ) -> Int? {
        let zone = crossZone ? nil : nodeZone
        // An application load balancer's stickiness is by cookie (HTTPProxy.swift), not by source address.
        let bySource = configuration.stickinessEnabled && !configuration.protocolName.isHTTP
        if bySource, let index = stickyTargets.target(for: key.client.ip), index < targets.count,
            targets[index].takesNewFlows, zone == nil || targets[index].zone == zone || targets[index].zone == "all"
        {
            return index
        }
        guard
            let index = selector.pick(
                from: targets, for: key, using: algorithm ?? configuration.algorithm, zone: zone, draw: draw)
        else {
            return nil
        }
        if bySource { stickyTargets.remember(index, for: key.client.ip) }
        return index
    }

    /// Round robin with targets in slow start (docs/alb.md §23): each is passed over unless a draw below
    /// its share comes up, so its share of requests grows linearly with the time it has been in slow
    /// start. `draw`: a uniform number in 0..<1. When every target that takes requests is passed over,
    /// the plain pick decides.
    package func pickSlowStarting(
        for key: FlowKey, nodeZone: String, now: UInt64, draw: () -> Double
    ) -> Int? {
        let zone = crossZone ? nil : nodeZone
        let admitted = selector.pick(from: targets, for: key, using: .roundRobin, zone: zone) { index in
            let share = targets[index].share(at: now)
            return share >= 1 || draw() < share
        }
        return admitted ?? selector.pick(from: targets, for: key, using: .roundRobin, zone: zone)
    }

    package static func headerTemplates(_ mode: ProxyProtocolMode) -> (v4: ProxyV2Template?, v6: ProxyV2Template?) {
        guard case .v2 = mode else { return (nil, nil) }
        let v4 = IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)
        let v6 = IPEndpoint(ip: .v6(IPv6Address(bytes: [UInt8](repeating: 0, count: 16))!), port: 0)
        return (
            proxyHeaderValue(mode, client: v4, node: v4).flatMap(ProxyV2Template.init),
            proxyHeaderValue(mode, client: v6, node: v6).flatMap(ProxyV2Template.init)
        )
    }

    /// Writes the PROXY header of a flow from `client` to `node`, sent in `mode`, to `buffer` (which
    /// holds a pipe's worth); returns its length, 0 for none. A v2 header of the group's current mode
    /// comes from its template, without allocating.
    func writeProxyHeader(
        _ mode: ProxyProtocolMode, client: IPEndpoint, node: IPEndpoint, to buffer: UnsafeMutableRawPointer
    ) -> Int {
        if mode == configuration.proxyProtocol, client.ip.isIPv6 == node.ip.isIPv6,
            let template = client.ip.isIPv6 ? headerTemplates.v6 : headerTemplates.v4
        {
            return template.write(source: client, destination: node, to: buffer)
        }
        guard let bytes = Self.proxyHeader(mode, client: client, node: node) else { return 0 }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return bytes.count
    }

    /// The PROXY header sent in `mode` for a flow from `client` to `node`, or nil.
    static func proxyHeader(_ mode: ProxyProtocolMode, client: IPEndpoint, node: IPEndpoint) -> [UInt8]? {
        proxyHeaderValue(mode, client: client, node: node)?.encoded()
    }

    static func proxyHeaderValue(_ mode: ProxyProtocolMode, client: IPEndpoint, node: IPEndpoint)
        -> ProxyHeader?
    {
        switch mode {
        case .off:
            return nil
        case .v1:
            return ProxyHeader(version: .v1, addresses: .inet(source: client, destination: node))
        case .v2(let awsTLVs, let vpcEndpointID):
            if awsTLVs { return ProxyHeader.aws(source: client, destination: node, vpcEndpointID: vpcEndpointID) }
            return ProxyHeader(version: .v2, addresses: .inet(source: client, destination: node))
        }
    }

    package init(
        configuration: TargetGroupConfiguration, targets: [RoutedTarget], crossZone: Bool,
        headerTemplates: (v4: ProxyV2Template?, v6: ProxyV2Template?), selector: TargetSelector,
        stickyTargets: StickyTable
    ) {
        self.configuration = configuration
        self.targets = targets
        self.crossZone = crossZone
        self.headerTemplates = headerTemplates
        self.selector = selector
        self.stickyTargets = stickyTargets
        self.slowStartEnds = targets.lazy.map(\.slowStartUntil).max() ?? 0
        self.stickyToken = UInt64(ResourceNames.id("group/\(configuration.name)"), radix: 16) ?? 0
    }
}
