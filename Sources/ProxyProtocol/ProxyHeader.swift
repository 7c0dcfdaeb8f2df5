/// A PROXY protocol header, version 1 (text) or 2 (binary), as the spec at
/// haproxy `doc/proxy-protocol.txt` defines it.
public struct ProxyHeader: Hashable, Sendable {
    public enum Version: Int, Hashable, Sendable {
        case v1 = 1
        case v2 = 2
    }

    /// `LOCAL`: the connection was made by the proxy itself (a health check); `PROXY`: on behalf of a client.
    public enum Command: String, Hashable, Sendable {
        case local = "LOCAL"
        case proxy = "PROXY"
    }

    /// The transport of the proxied connection (v2 byte 14, low nibble).
    public enum Transport: String, Hashable, Sendable {
        case unspecified = "UNSPEC"
        case stream = "STREAM"
        case datagram = "DGRAM"
    }

    /// The address block.
    public enum Addresses: Hashable, Sendable {
        /// v1 `UNKNOWN`, v2 `AF_UNSPEC`, or a LOCAL header (whose addresses a receiver ignores).
        case unspecified
        case inet(source: IPEndpoint, destination: IPEndpoint)
        /// `AF_UNIX`: two 108-byte paths, zero padded.
        case unix(source: [UInt8], destination: [UInt8])
    }

    public var version: Version
    public var command: Command
    public var transport: Transport
    public var addresses: Addresses
    /// The raw v2 family byte (byte 14) as received; `nil` for headers built in code.
    public var familyByte: UInt8?
    /// The TLVs in order (v2 only).
    public var tlvs: [ProxyTLV]

    public init(
        version: Version, command: Command = .proxy, transport: Transport = .stream, addresses: Addresses,
        tlvs: [ProxyTLV] = []
    ) {
        self.version = version
        self.command = command
        self.transport = transport
        self.addresses = addresses
        self.familyByte = nil
        self.tlvs = tlvs
    }

    /// The source (client) endpoint, if the header carries one.
    public var source: IPEndpoint? {
        if case .inet(let source, _) = addresses { return source }
        return nil
    }

    /// The destination (the proxy's listening address), if the header carries one.
    public var destination: IPEndpoint? {
        if case .inet(_, let destination) = addresses { return destination }
        return nil
    }

    /// The v1 protocol word or v2 family name: `TCP4`, `TCP6`, `UDP4`, `UDP6`, `UNIX`, `UNKNOWN`/`UNSPEC`.
    public var familyName: String {
        switch addresses {
        case .unspecified:
            if let byte = familyByte { return ProxyHeader.familyName(byte) }
            return version == .v1 ? "UNKNOWN" : "UNSPEC"
        case .inet(let source, _):
            let suffix = source.ip.isIPv6 ? "6" : "4"
            return (transport == .datagram ? "UDP" : "TCP") + suffix
        case .unix:
            return transport == .datagram ? "UNIX_DGRAM" : "UNIX"
        }
    }

    static func familyName(_ byte: UInt8) -> String {
        switch byte {
        case 0x11: return "TCP4"
        case 0x12: return "UDP4"
        case 0x21: return "TCP6"
        case 0x22: return "UDP6"
        case 0x31: return "UNIX"
        case 0x32: return "UNIX_DGRAM"
        default: return "UNSPEC"
        }
    }

    /// How the CRC32C TLV checked out when the header was parsed.
    public var crc32c: CRCStatus = .absent

    public enum CRCStatus: String, Hashable, Sendable {
        case valid, invalid, absent
    }

    /// The VPC endpoint id of an AWS `0xEA`/`0x01` TLV (PrivateLink), if present.
    public var awsVPCEndpointID: String? {
        for tlv in tlvs where tlv.type == ProxyTLV.Kind.aws.rawValue {
            if tlv.value.first == 0x01 { return String(decoding: tlv.value.dropFirst(), as: UTF8.self) }
        }
        return nil
    }
}

/// One v2 type-length-value field.
public struct ProxyTLV: Hashable, Sendable {
    public var type: UInt8
    public var value: [UInt8]

    public init(type: UInt8, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    public init(_ kind: Kind, value: [UInt8]) { self.init(type: kind.rawValue, value: value) }

    /// The registered types (PROXY protocol spec §2.2.x) and AWS's custom one.
    public enum Kind: UInt8, Sendable {
        case alpn = 0x01
        case authority = 0x02
        case crc32c = 0x03
        case noop = 0x04
        case uniqueID = 0x05
        case ssl = 0x20
        case netns = 0x30
        /// `PP2_TYPE_AWS`: first value byte is the subtype, `0x01` the VPC endpoint id.
        case aws = 0xEA
    }

    /// The spec's name for the type (`PP2_TYPE_CRC32C`), or `PP2_TYPE_0xNN` for an unregistered one.
    public var name: String {
        switch Kind(rawValue: type) {
        case .alpn: return "PP2_TYPE_ALPN"
        case .authority: return "PP2_TYPE_AUTHORITY"
        case .crc32c: return "PP2_TYPE_CRC32C"
        case .noop: return "PP2_TYPE_NOOP"
        case .uniqueID: return "PP2_TYPE_UNIQUE_ID"
        case .ssl: return "PP2_TYPE_SSL"
        case .netns: return "PP2_TYPE_NETNS"
        case .aws: return "PP2_TYPE_AWS"
        case nil:
            let hex = String(type, radix: 16, uppercase: true)
            return "PP2_TYPE_0x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
}

/// The twelve bytes every v2 header starts with.
public let proxyV2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
