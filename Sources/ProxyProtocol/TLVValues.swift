/// A TLV's value decoded by its type (PROXY protocol spec §2.2; AWS's `0xEA`).
public enum ProxyTLVValue: Hashable, Sendable {
    /// `PP2_TYPE_ALPN`: the application protocol, e.g. `h2`.
    case alpn([UInt8])
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for (SNI or Host), UTF-8.
    case authority(String)
    case crc32c(UInt32)
    /// `PP2_TYPE_NOOP`: padding, this many bytes.
    case noop(Int)
    /// `PP2_TYPE_UNIQUE_ID`: an opaque connection id of at most 128 bytes.
    case uniqueID([UInt8])
    case ssl(ProxySSLInfo)
    /// `PP2_TYPE_NETNS`: the network namespace's name.
    case netns(String)
    /// `PP2_TYPE_AWS` subtype `0x01`: the VPC endpoint id of a PrivateLink connection.
    case awsVPCEndpointID(String)
    /// `PP2_TYPE_AWS` with another subtype.
    case aws(subtype: UInt8, value: [UInt8])
    /// Any other type, kept raw.
    case unknown([UInt8])
}

/// `PP2_TYPE_SSL`: how the client connected to the proxy over TLS.
public struct ProxySSLInfo: Hashable, Sendable {
    /// `PP2_CLIENT_SSL` (0x01), `PP2_CLIENT_CERT_CONN` (0x02), `PP2_CLIENT_CERT_SESS` (0x04).
    public var clientFlags: UInt8
    /// Zero when the client presented a certificate that verified.
    public var verify: UInt32
    /// Sub-TLVs: 0x21 VERSION, 0x22 CN, 0x23 CIPHER, 0x24 SIG_ALG, 0x25 KEY_ALG (others kept).
    public var subTLVs: [ProxyTLV]

    public init(clientFlags: UInt8, verify: UInt32, subTLVs: [ProxyTLV]) {
        self.clientFlags = clientFlags
        self.verify = verify
        self.subTLVs = subTLVs
    }

    public var connectedOverSSL: Bool { clientFlags & 0x01 != 0 }
    public var version: String? { text(0x21) }
    public var commonName: String? { text(0x22) }
    public var cipher: String? { text(0x23) }
    public var signatureAlgorithm: String? { text(0x24) }
    public var keyAlgorithm: String? { text(0x25) }

    private func text(_ type: UInt8) -> String? {
        subTLVs.first { $0.type == type }.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// The value bytes of a `PP2_TYPE_SSL` TLV.
    public var encoded: [UInt8] {
        var bytes = [clientFlags]
        bytes += [UInt8(verify >> 24), UInt8((verify >> 16) & 0xFF), UInt8((verify >> 8) & 0xFF), UInt8(verify & 0xFF)]
        for tlv in subTLVs {
            bytes += [tlv.type, UInt8(tlv.value.count >> 8), UInt8(tlv.value.count & 0xFF)] + tlv.value
        }
        return bytes
    }
}

extension ProxyTLV {
    /// The longest `PP2_TYPE_UNIQUE_ID` the spec allows.
    public static let maximumUniqueIDLength = 128

    /// The value decoded by type, or why it is invalid (a wrong length, a truncated sub-TLV).
    public func decoded() throws(ProxyProtocolError) -> ProxyTLVValue {
        func invalid(_ reason: String) -> ProxyProtocolError { .v2InvalidTLV(type: type, reason: reason) }
        switch Kind(rawValue: type) {
        case .alpn:
            return .alpn(value)
        case .authority:
            return .authority(String(decoding: value, as: UTF8.self))
        case .crc32c:
            guard value.count == 4 else { throw invalid("CRC32C is \(value.count) bytes, not 4") }
            return .crc32c(value.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        case .noop:
            return .noop(value.count)
        case .uniqueID:
            guard value.count <= Self.maximumUniqueIDLength else {
                throw invalid("UNIQUE_ID is \(value.count) bytes, more than \(Self.maximumUniqueIDLength)")
            }
            return .uniqueID(value)
        case .ssl:
            guard value.count >= 5 else { throw invalid("SSL is \(value.count) bytes, less than 5") }
            let verify = value[1..<5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard let subTLVs = ProxyTLV.split(value[5...]) else { throw invalid("an SSL sub-TLV runs past the end") }
            return .ssl(ProxySSLInfo(clientFlags: value[0], verify: verify, subTLVs: subTLVs))
        case .netns:
            return .netns(String(decoding: value, as: UTF8.self))
        case .aws:
            guard let subtype = value.first else { throw invalid("AWS TLV has no subtype byte") }
            if subtype == 0x01 { return .awsVPCEndpointID(String(decoding: value.dropFirst(), as: UTF8.self)) }
            return .aws(subtype: subtype, value: Array(value.dropFirst()))
        case nil:
            return .unknown(value)
        }
    }

    /// Type-length-value fields filling `region` exactly, or nil when one runs past its end.
    static func split(_ region: ArraySlice<UInt8>) -> [ProxyTLV]? {
        var result: [ProxyTLV] = []
        var i = region.startIndex
        while i < region.endIndex {
            guard region.endIndex - i >= 3 else { return nil }
            let length = Int(region[i + 1]) << 8 | Int(region[i + 2])
            guard region.endIndex - i - 3 >= length else { return nil }
            result.append(ProxyTLV(type: region[i], value: Array(region[(i + 3)..<(i + 3 + length)])))
            i += 3 + length
        }
        return result
    }

    /// The name of an SSL sub-TLV type (`PP2_SUBTYPE_SSL_VERSION`…).
    public static func sslSubtypeName(_ type: UInt8) -> String {
        switch type {
        case 0x21: return "PP2_SUBTYPE_SSL_VERSION"
        case 0x22: return "PP2_SUBTYPE_SSL_CN"
        case 0x23: return "PP2_SUBTYPE_SSL_CIPHER"
        case 0x24: return "PP2_SUBTYPE_SSL_SIG_ALG"
        case 0x25: return "PP2_SUBTYPE_SSL_KEY_ALG"
        default: return "PP2_SUBTYPE_0x" + String(type, radix: 16, uppercase: true)
        }
    }
}

extension ProxyHeader {
    /// Every TLV decoded, in order.
    public func decodedTLVs() throws(ProxyProtocolError) -> [ProxyTLVValue] {
        var values: [ProxyTLVValue] = []
        for tlv in tlvs { values.append(try tlv.decoded()) }
        return values
    }

    /// The ALPN TLV's protocol, if present.
    public var alpn: [UInt8]? { tlvs.first { $0.type == ProxyTLV.Kind.alpn.rawValue }?.value }
    /// The AUTHORITY TLV, if present.
    public var authority: String? {
        tlvs.first { $0.type == ProxyTLV.Kind.authority.rawValue }.map { String(decoding: $0.value, as: UTF8.self) }
    }
    /// The UNIQUE_ID TLV, if present.
    public var uniqueID: [UInt8]? { tlvs.first { $0.type == ProxyTLV.Kind.uniqueID.rawValue }?.value }
    /// The SSL TLV, if present and well formed.
    public var ssl: ProxySSLInfo? {
        guard let tlv = tlvs.first(where: { $0.type == ProxyTLV.Kind.ssl.rawValue }),
            case .ssl(let info)? = try? tlv.decoded()
        else { return nil }
        return info
    }
    /// The NETNS TLV, if present.
    public var netns: String? {
        tlvs.first { $0.type == ProxyTLV.Kind.netns.rawValue }.map { String(decoding: $0.value, as: UTF8.self) }
    }
}
