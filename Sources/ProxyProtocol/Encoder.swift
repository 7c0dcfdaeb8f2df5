extension ProxyHeader {
    /// The header as bytes on the wire. A v2 header that carries a CRC32C TLV gets its checksum
    /// computed here, whatever value the TLV held.
    public func encoded() -> [UInt8] {
        switch version {
        case .v1: return encodedV1()
        case .v2: return encodedV2().bytes
        }
    }

    /// `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`, or `PROXY UNKNOWN\r\n` when there is no IP address block.
    private func encodedV1() -> [UInt8] {
        guard case .inet(let source, let destination) = addresses, source.ip.isIPv6 == destination.ip.isIPv6 else {
            return Array("PROXY UNKNOWN\r\n".utf8)
        }
        let family = source.ip.isIPv6 ? "TCP6" : "TCP4"
        return Array("PROXY \(family) \(source.ip) \(destination.ip) \(source.port) \(destination.port)\r\n".utf8)
    }

    /// The v2 bytes, and where the checksum of the first CRC32C TLV is (`ProxyV2Template` rewrites it).
    func encodedV2() -> (bytes: [UInt8], crcOffset: Int?) {
        var bytes = proxyV2Signature
        bytes.reserveCapacity(128)
        bytes.append(0x20 | (command == .proxy ? 0x01 : 0x00))
        let transportNibble: UInt8 =
            switch transport {
            case .unspecified: 0x0
            case .stream: 0x1
            case .datagram: 0x2
            }
        switch addresses {
        case .unspecified:
            bytes.append(familyByte ?? 0x00)
            bytes += [0, 0]
        case .inet(let source, let destination):
            bytes.append((source.ip.isIPv6 ? 0x20 : 0x10) | transportNibble)
            bytes += [0, 0]
            bytes += source.ip.bytes
            bytes += destination.ip.bytes
            bytes += [UInt8(source.port >> 8), UInt8(source.port & 0xFF)]
            bytes += [UInt8(destination.port >> 8), UInt8(destination.port & 0xFF)]
        case .unix(let source, let destination):
            bytes.append(0x30 | transportNibble)
            bytes += [0, 0]
            bytes += paddedPath(source)
            bytes += paddedPath(destination)
        }
        var crcOffset: Int?
        for tlv in tlvs {
            bytes.append(tlv.type)
            bytes += [UInt8(tlv.value.count >> 8), UInt8(tlv.value.count & 0xFF)]
            // Only the first CRC32C TLV is the checksum, as a receiver checks the first one.
            if tlv.type == ProxyTLV.Kind.crc32c.rawValue && tlv.value.count == 4 && crcOffset == nil {
                crcOffset = bytes.count
                bytes += [0, 0, 0, 0]
            } else {
                bytes += tlv.value
            }
        }
        let length = bytes.count - 16
        bytes[14] = UInt8(length >> 8)
        bytes[15] = UInt8(length & 0xFF)
        if let offset = crcOffset {
            let crc = CRC32C.checksum(bytes)
            bytes[offset] = UInt8(crc >> 24)
            bytes[offset + 1] = UInt8((crc >> 16) & 0xFF)
            bytes[offset + 2] = UInt8((crc >> 8) & 0xFF)
            bytes[offset + 3] = UInt8(crc & 0xFF)
        }
        return (bytes, crcOffset)
    }

    private func paddedPath(_ path: [UInt8]) -> [UInt8] {
        Array(path.prefix(108)) + [UInt8](repeating: 0, count: max(0, 108 - path.count))
    }

    /// The v2 header shaped as an AWS Network Load Balancer sends it (docs/proxy-protocol.md §6): PROXY, TCP over
    /// IPv4 or IPv6, then a CRC32C TLV, then the `0xEA` VPC endpoint TLV when the flow came through
    /// PrivateLink, then a NOOP TLV padding the length to 84 (IPv4; a 100-byte header).
    ///
    /// NLB's IPv6 padding has not been observed; this pads IPv6 by the same 72 bytes of TLVs
    /// (length 108, a 124-byte header).
    public static func aws(source: IPEndpoint, destination: IPEndpoint, vpcEndpointID: String? = nil) -> ProxyHeader {
        var tlvs = [ProxyTLV(.crc32c, value: [0, 0, 0, 0])]
        if let id = vpcEndpointID { tlvs.append(ProxyTLV(.aws, value: [0x01] + Array(id.utf8))) }
        let addressLength = source.ip.isIPv6 ? 36 : 12
        let used = addressLength + tlvs.reduce(0) { $0 + 3 + $1.value.count }
        let padding = addressLength + 72 - used - 3
        if padding >= 0 { tlvs.append(ProxyTLV(.noop, value: [UInt8](repeating: 0, count: padding))) }
        return ProxyHeader(version: .v2, addresses: .inet(source: source, destination: destination), tlvs: tlvs)
    }

    /// The LOCAL header an NLB sends on health-check connections (docs/health.md §3): family byte TCP4
    /// but no address block, a CRC32C TLV and NOOP padding to length 84 (100 bytes in all).
    public static func awsHealthCheck() -> ProxyHeader {
        var header = ProxyHeader(
            version: .v2, command: .local, addresses: .unspecified,
            tlvs: [ProxyTLV(.crc32c, value: [0, 0, 0, 0]), ProxyTLV(.noop, value: [UInt8](repeating: 0, count: 74))])
        header.familyByte = 0x11
        return header
    }
}
