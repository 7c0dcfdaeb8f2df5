/// An IPv4 address, parsed and printed without any system call.
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    /// The four bytes in network order.
    public var bytes: (UInt8, UInt8, UInt8, UInt8)

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { bytes = (a, b, c, d) }

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 4 else { return nil }
        let b = Array(bytes)
        self.init(b[0], b[1], b[2], b[3])
    }

    /// Parses dotted decimal: four decimal octets, no leading zeros (`010` could mean octal elsewhere).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard let octet = parseDecimal(part, maximum: 255) else { return nil }
            octets.append(UInt8(octet))
        }
        self.init(octets[0], octets[1], octets[2], octets[3])
    }

    public var byteArray: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3] }

    /// The address as a 32-bit number in host order (`127.0.0.1` is `0x7F00_0001`).
    public var value: UInt32 {
        UInt32(bytes.0) << 24 | UInt32(bytes.1) << 16 | UInt32(bytes.2) << 8 | UInt32(bytes.3)
    }

    public var isLoopback: Bool { bytes.0 == 127 }
    public var isUnspecified: Bool { value == 0 }

    public var description: String { "\(bytes.0).\(bytes.1).\(bytes.2).\(bytes.3)" }

    public static func == (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value == rhs.value }
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }
}

/// An IPv6 address, parsed and printed (RFC 5952 form) without any system call.
public struct IPv6Address: Hashable, Sendable, CustomStringConvertible {
    /// The sixteen bytes in network order.
    public var bytes: [UInt8]

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        self.bytes = Array(bytes)
    }

    /// Parses the text forms of RFC 4291 §2.2, including `::` and a trailing dotted IPv4 part.
    public init?(_ text: some StringProtocol) {
        var text = Substring(text)
        if text.hasPrefix("[") && text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        var tail: [UInt8] = []
        if let lastColon = text.lastIndex(of: ":"), text[lastColon...].contains(".") {
            guard let v4 = IPv4Address(text[text.index(after: lastColon)...]) else { return nil }
            tail = v4.byteArray
            text = text[...lastColon]
            if text.hasSuffix(":") && !text.hasSuffix("::") { text = text.dropLast() }
        }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.count), let value = UInt16(group, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        let wanted = (16 - tail.count) / 2
        var all: [UInt16]
        let halves = text.components(separatedByDoubleColon: ())
        if halves.count == 1 {
            guard let only = groups(halves[0]), only.count == wanted else { return nil }
            all = only
        } else if halves.count == 2 {
            guard let head = groups(halves[0]), let rest = groups(halves[1]), head.count + rest.count < wanted else {
                return nil
            }
            all = head + Array(repeating: 0, count: wanted - head.count - rest.count) + rest
        } else {
            return nil
        }
        var bytes: [UInt8] = []
        for group in all { bytes += [UInt8(group >> 8), UInt8(group & 0xFF)] }
        self.bytes = bytes + tail
    }

    public var isLoopback: Bool { bytes == [UInt8](repeating: 0, count: 15) + [1] }
    public var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }

    /// An IPv4-mapped address (`::ffff:a.b.c.d`) as its IPv4 address.
    public var mappedIPv4: IPv4Address? {
        guard bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return IPv4Address(bytes: bytes[12..<16])
    }

    /// RFC 5952: lower case, no leading zeros, the longest run of two or more zero groups as `::`.
    public var description: String {
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > bestLength {
                bestStart = index
                bestLength = end - index
            }
            index = end
        }
        func hex(_ range: Range<Int>) -> String {
            range.map { String(groups[$0], radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses either family; an IPv6 address may be given in brackets.
    public init?(_ text: some StringProtocol) {
        if let v4 = IPv4Address(text) {
            self = .v4(v4)
        } else if let v6 = IPv6Address(text) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    public var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }

    public var isLoopback: Bool {
        switch self {
        case .v4(let a): return a.isLoopback
        case .v6(let a): return a.isLoopback || (a.mappedIPv4?.isLoopback ?? false)
        }
    }

    public var bytes: [UInt8] {
        switch self {
        case .v4(let a): return a.byteArray
        case .v6(let a): return a.bytes
        }
    }

    public var description: String {
        switch self {
        case .v4(let a): return a.description
        case .v6(let a): return a.description
        }
    }
}

/// An address and a port: `192.0.2.1:80`, `[2001:db8::1]:80`.
public struct IPEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16

    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses `ip:port` or `[ipv6]:port`.
    public init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"),
            let port = parseDecimal(text[text.index(after: colon)...], maximum: 65535)
        else { return nil }
        let host = text[..<colon]
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), let v6 = IPv6Address(host) else { return nil }
            self.init(ip: .v6(v6), port: UInt16(port))
        } else {
            guard let v4 = IPv4Address(host) else { return nil }
            self.init(ip: .v4(v4), port: UInt16(port))
        }
    }

    public var description: String {
        switch ip {
        case .v4(let a): return "\(a):\(port)"
        case .v6(let a): return "[\(a)]:\(port)"
        }
    }
}

/// Decimal digits only, no sign, no leading zero (except `0` itself), at most `maximum`.
func parseDecimal(_ text: some StringProtocol, maximum: Int) -> Int? {
    guard !text.isEmpty, text.count <= 10, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
    if text.count > 1 && text.utf8.first == 0x30 { return nil }
    guard let value = Int(text), value <= maximum else { return nil }
    return value
}

extension Substring {
    /// Splits at `::` (without Foundation).
    fileprivate func components(separatedByDoubleColon: Void) -> [Substring] {
        var parts: [Substring] = []
        var start = startIndex
        var index = startIndex
        while index < endIndex {
            let next = self.index(after: index)
            if self[index] == ":" && next < endIndex && self[next] == ":" {
                parts.append(self[start..<index])
                start = self.index(after: next)
                index = start
            } else {
                index = next
            }
        }
        parts.append(self[start..<endIndex])
        return parts
    }
}
