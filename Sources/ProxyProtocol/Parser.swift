/// Why bytes that start like a PROXY header are not a valid one.
public enum ProxyProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A v1 line without CRLF within 107 bytes.
    case v1LineTooLong
    /// A v1 line that breaks the grammar; the associated text says where.
    case v1Malformed(String)
    /// The version nibble of byte 13 is not 2.
    case v2UnsupportedVersion(UInt8)
    /// The command nibble of byte 13 is neither LOCAL (0) nor PROXY (1).
    case v2UnsupportedCommand(UInt8)
    /// Byte 14 names no family/transport pair of the spec.
    case v2UnsupportedFamily(UInt8)
    /// The declared length is shorter than the family's address block.
    case v2LengthTooShort(declared: Int, needed: Int)
    /// The header is longer than the parser's `maximumV2Length`.
    case v2TooLong(length: Int, maximum: Int)
    /// A TLV runs past the end of the header.
    case v2TruncatedTLV(offset: Int)
    /// A registered TLV whose value breaks its type's rules (a CRC32C not 4 bytes, a UNIQUE_ID over 128…).
    case v2InvalidTLV(type: UInt8, reason: String)
    /// The CRC32C TLV does not match the header.
    case v2ChecksumMismatch(expected: UInt32, received: UInt32)

    public var description: String {
        switch self {
        case .v1LineTooLong: return "PROXY v1 line has no CRLF within 107 bytes"
        case .v1Malformed(let what): return "PROXY v1 line is malformed: \(what)"
        case .v2UnsupportedVersion(let v): return "PROXY v2 version nibble is \(v), not 2"
        case .v2UnsupportedCommand(let c): return "PROXY v2 command \(c) is neither LOCAL (0) nor PROXY (1)"
        case .v2UnsupportedFamily(let f): return "PROXY v2 family/transport byte 0x\(String(f, radix: 16)) is unknown"
        case .v2LengthTooShort(let declared, let needed):
            return "PROXY v2 length \(declared) is shorter than its address block (\(needed))"
        case .v2TooLong(let length, let maximum):
            return "PROXY v2 header of \(length) bytes exceeds the limit of \(maximum)"
        case .v2TruncatedTLV(let offset): return "PROXY v2 TLV at offset \(offset) runs past the header"
        case .v2InvalidTLV(let type, let reason):
            return "PROXY v2 TLV 0x\(String(type, radix: 16)) is invalid: \(reason)"
        case .v2ChecksumMismatch(let expected, let received):
            return "PROXY v2 CRC32C mismatch: header says \(hex32(received)), bytes give \(hex32(expected))"
        }
    }
}

private func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}

/// What the parser makes of the bytes that have arrived so far.
public enum ProxyParseResult: Hashable, Sendable {
    /// The bytes so far are a prefix of a header: feed more.
    case needMoreData
    /// The stream does not start with a PROXY header; every byte is application data.
    case notProxyHeader
    /// A complete header, and how many bytes of the input it used; the rest is application data.
    case header(ProxyHeader, consumed: Int)
}

/// Parses a PROXY v1 or v2 header at the start of a byte stream. Stateless: give it every byte that
/// has arrived so far (use `ProxyHeaderDecoder` to have it keep them), as often as you like.
public struct ProxyHeaderParser: Sendable {
    /// The longest v2 header accepted, in bytes including the 16-byte fixed part. Bounds memory.
    public var maximumV2Length: Int
    /// When false, a CRC32C mismatch is reported in `ProxyHeader.crc32c` rather than thrown.
    public var rejectsChecksumMismatch: Bool

    public static let v1MaximumLength = 107

    public init(maximumV2Length: Int = 4096, rejectsChecksumMismatch: Bool = true) {
        self.maximumV2Length = maximumV2Length
        self.rejectsChecksumMismatch = rejectsChecksumMismatch
    }

    public func parse(_ input: some Collection<UInt8>) throws(ProxyProtocolError) -> ProxyParseResult {
        let bytes = Array(input)
        if bytes.isEmpty { return .needMoreData }
        if bytes[0] == 0x0D {
            let n = min(bytes.count, proxyV2Signature.count)
            guard bytes[0..<n].elementsEqual(proxyV2Signature[0..<n]) else { return .notProxyHeader }
            return try parseV2(bytes)
        }
        if bytes[0] == 0x50 {  // "P"
            let prefix = Array("PROXY ".utf8)
            let n = min(bytes.count, prefix.count)
            guard bytes[0..<n].elementsEqual(prefix[0..<n]) else { return .notProxyHeader }
            return try parseV1(bytes)
        }
        return .notProxyHeader
    }

    // MARK: v1

    private func parseV1(_ bytes: [UInt8]) throws(ProxyProtocolError) -> ProxyParseResult {
        let limit = min(bytes.count, Self.v1MaximumLength)
        var end: Int?
        for i in 0..<limit where bytes[i] == 0x0A {
            end = i
            break
        }
        guard let lf = end else {
            if bytes.count >= Self.v1MaximumLength { throw .v1LineTooLong }
            return .needMoreData
        }
        guard lf > 0, bytes[lf - 1] == 0x0D else { throw .v1Malformed("line does not end with CRLF") }
        let line = String(decoding: bytes[0..<(lf - 1)], as: UTF8.self)
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count >= 2 else { throw .v1Malformed("no protocol after PROXY") }
        switch fields[1] {
        case "UNKNOWN":
            // The spec: a receiver must ignore anything after UNKNOWN up to the CRLF.
            var header = ProxyHeader(version: .v1, transport: .unspecified, addresses: .unspecified)
            header.command = .proxy
            return .header(header, consumed: lf + 1)
        case "TCP4", "TCP6":
            guard fields.count == 6 else {
                throw .v1Malformed("expected 'PROXY \(fields[1]) <src> <dst> <sport> <dport>' with single spaces")
            }
            let isV6 = fields[1] == "TCP6"
            func address(_ text: Substring, _ role: String) throws(ProxyProtocolError) -> IPAddress {
                if isV6, let a = IPv6Address(text), !text.hasPrefix("[") { return .v6(a) }
                if !isV6, let a = IPv4Address(text) { return .v4(a) }
                throw .v1Malformed("\(role) address '\(text)' is not \(isV6 ? "IPv6" : "IPv4")")
            }
            func port(_ text: Substring, _ role: String) throws(ProxyProtocolError) -> UInt16 {
                guard let value = parseDecimal(text, maximum: 65535) else {
                    throw .v1Malformed("\(role) port '\(text)' is not 0-65535 without leading zeros")
                }
                return UInt16(value)
            }
            let source = IPEndpoint(ip: try address(fields[2], "source"), port: try port(fields[4], "source"))
            let destination = IPEndpoint(
                ip: try address(fields[3], "destination"), port: try port(fields[5], "destination"))
            return .header(
                ProxyHeader(version: .v1, addresses: .inet(source: source, destination: destination)),
                consumed: lf + 1)
        default:
            throw .v1Malformed("protocol '\(fields[1])' is not TCP4, TCP6 or UNKNOWN")
        }
    }

    // MARK: v2

    private func parseV2(_ bytes: [UInt8]) throws(ProxyProtocolError) -> ProxyParseResult {
        guard bytes.count >= 16 else {
            // Reject what is already decidable, so a bad byte 13 fails fast.
            if bytes.count > 12 { try checkVersionAndCommand(bytes[12]) }
            return .needMoreData
        }
        let command = try checkVersionAndCommand(bytes[12])
        let family = bytes[13]
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        let total = 16 + length
        guard total <= maximumV2Length else { throw .v2TooLong(length: total, maximum: maximumV2Length) }
        let addressLength: Int
        let transport: ProxyHeader.Transport
        switch family {
        case 0x00: (addressLength, transport) = (0, .unspecified)
        case 0x11: (addressLength, transport) = (12, .stream)
        case 0x12: (addressLength, transport) = (12, .datagram)
        case 0x21: (addressLength, transport) = (36, .stream)
        case 0x22: (addressLength, transport) = (36, .datagram)
        case 0x31: (addressLength, transport) = (216, .stream)
        case 0x32: (addressLength, transport) = (216, .datagram)
        default: throw .v2UnsupportedFamily(family)
        }
        if command == .proxy && length < addressLength {
            throw .v2LengthTooShort(declared: length, needed: addressLength)
        }
        guard bytes.count >= total else { return .needMoreData }

        var header = ProxyHeader(version: .v2, command: command, transport: transport, addresses: .unspecified)
        header.familyByte = family
        guard command == .proxy else {
            // Spec §2.2: a LOCAL receiver uses the real endpoints and discards the block whatever it
            // holds, so nothing in it is an error. AWS's probe header (docs/health.md §3) says TCP4 but has
            // TLVs, no address block; they are reported only when the block is TLVs beyond doubt:
            // the family has no address block, or a CRC32C covers the header. An address block is
            // never read as TLVs.
            if let tlvs = ProxyTLV.split(bytes[16..<total]), (try? tlvs.map { try $0.decoded() }) != nil {
                let crc = (try? checkCRC(bytes[0..<total], tlvStart: 16, rejecting: false)) ?? .absent
                if addressLength == 0 || crc == .valid {
                    header.tlvs = tlvs
                    header.crc32c = crc
                }
            }
            return .header(header, consumed: total)
        }
        let tlvStart = 16 + addressLength
        header.addresses = Self.addresses(family: family, block: bytes[16..<tlvStart])
        guard let tlvs = ProxyTLV.split(bytes[tlvStart..<total]) else {
            throw .v2TruncatedTLV(offset: Self.truncatedOffset(bytes[tlvStart..<total]))
        }
        // Each registered TLV must be well formed for its type; a CRC32C mismatch is judged below.
        for tlv in tlvs { _ = try tlv.decoded() }
        header.tlvs = tlvs
        header.crc32c = try checkCRC(bytes[0..<total], tlvStart: tlvStart, rejecting: rejectsChecksumMismatch)
        return .header(header, consumed: total)
    }

    @discardableResult
    private func checkVersionAndCommand(_ byte: UInt8) throws(ProxyProtocolError) -> ProxyHeader.Command {
        guard byte >> 4 == 2 else { throw .v2UnsupportedVersion(byte >> 4) }
        switch byte & 0x0F {
        case 0: return .local
        case 1: return .proxy
        default: throw .v2UnsupportedCommand(byte & 0x0F)
        }
    }

    private static func addresses(family: UInt8, block: ArraySlice<UInt8>) -> ProxyHeader.Addresses {
        let b = Array(block)
        func port(_ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }
        switch family >> 4 {
        case 1:
            return .inet(
                source: IPEndpoint(ip: .v4(IPv4Address(b[0], b[1], b[2], b[3])), port: port(8)),
                destination: IPEndpoint(ip: .v4(IPv4Address(b[4], b[5], b[6], b[7])), port: port(10)))
        case 2:
            return .inet(
                source: IPEndpoint(ip: .v6(IPv6Address(bytes: b[0..<16])!), port: port(32)),
                destination: IPEndpoint(ip: .v6(IPv6Address(bytes: b[16..<32])!), port: port(34)))
        case 3:
            func path(_ range: Range<Int>) -> [UInt8] { Array(b[range].prefix { $0 != 0 }) }
            return .unix(source: path(0..<108), destination: path(108..<216))
        default:
            return .unspecified
        }
    }

    private static func truncatedOffset(_ region: ArraySlice<UInt8>) -> Int {
        var i = region.startIndex
        while region.endIndex - i >= 3 {
            let length = Int(region[i + 1]) << 8 | Int(region[i + 2])
            if region.endIndex - i - 3 < length { break }
            i += 3 + length
        }
        return i
    }

    private func checkCRC(_ header: ArraySlice<UInt8>, tlvStart: Int, rejecting: Bool) throws(ProxyProtocolError)
        -> ProxyHeader.CRCStatus
    {
        // The checksum covers the whole header with the CRC field itself zeroed (spec §2.2.5).
        var bytes = Array(header)
        var i = tlvStart
        while i + 3 <= bytes.count {
            let length = Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            if bytes[i] == ProxyTLV.Kind.crc32c.rawValue && length == 4 {
                let received = bytes[(i + 3)..<(i + 7)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                for k in (i + 3)..<(i + 7) { bytes[k] = 0 }
                let expected = CRC32C.checksum(bytes)
                if expected == received { return .valid }
                if rejecting { throw .v2ChecksumMismatch(expected: expected, received: received) }
                return .invalid
            }
            i += 3 + length
        }
        return .absent
    }
}

/// Keeps the bytes of a stream until a PROXY header is complete: feed it whatever arrived.
public struct ProxyHeaderDecoder: Sendable {
    public var parser: ProxyHeaderParser
    public private(set) var buffered: [UInt8] = []

    public init(parser: ProxyHeaderParser = ProxyHeaderParser()) { self.parser = parser }

    /// Adds `bytes` and parses everything buffered so far. After `.header(_, consumed:)`, the bytes
    /// of `buffered` past `consumed` are application data; after `.notProxyHeader`, all of them are.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(ProxyProtocolError) -> ProxyParseResult {
        buffered.append(contentsOf: bytes)
        return try parser.parse(buffered)
    }
}
