/// An address range: `198.51.100.0/24`, `2001:db8::/32`, or one address (`/32`, `/128` implied).
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: Int

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let maximum = address.isIPv6 ? 128 : 32
        var length = maximum
        if parts.count == 2 {
            guard let value = parseDecimal(parts[1], maximum: maximum) else { return nil }
            length = value
        }
        self.address = address
        self.prefixLength = length
    }

    /// Whether `ip` is in this range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    public func contains(_ ip: IPAddress) -> Bool {
        var candidate = ip
        if case .v6(let v6) = ip, let v4 = v6.mappedIPv4, !address.isIPv6 { candidate = .v4(v4) }
        guard candidate.isIPv6 == address.isIPv6 else { return false }
        let a = address.bytes
        let b = candidate.bytes
        var remaining = prefixLength
        for i in 0..<a.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if a[i] & mask != b[i] & mask { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// Whether to honour a PROXY header, decided by who sent it — nginx's `set_real_ip_from`. A header
/// is believed only from a trusted peer (your load balancer); from anyone else it is a forgery.
public struct ProxyTrust: Sendable {
    public var trusted: [CIDR]

    public init(trusted: [CIDR]) { self.trusted = trusted }

    public enum Decision: Equatable, Sendable {
        /// Honour the header: the peer is in this range.
        case trusted(CIDR)
        /// Do not: the reason says why, for a log line.
        case untrusted(reason: String)
    }

    public func evaluate(peer: IPAddress) -> Decision {
        if let range = trusted.first(where: { $0.contains(peer) }) { return .trusted(range) }
        let ranges =
            trusted.isEmpty ? "no range is trusted" : "trusted: \(trusted.map(\.description).joined(separator: ", "))"
        return .untrusted(reason: "peer \(peer) is not a trusted proxy (\(ranges)); its PROXY header is ignored")
    }

    /// The client's address: the header's source when the peer is trusted and the header carries one,
    /// else the peer itself.
    public func clientAddress(peer: IPEndpoint, header: ProxyHeader?) -> IPEndpoint {
        guard let header, header.command == .proxy, let source = header.source,
            case .trusted = evaluate(peer: peer.ip)
        else { return peer }
        return source
    }
}
