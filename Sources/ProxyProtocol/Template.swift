/// A v2 PROXY header for many connections of one shape (address family and TLVs): encoded once, then
/// written for each connection with its addresses, ports and CRC32C filled in, without allocating.
/// A load balancer sending the same TLVs on every connection uses one per family.
public struct ProxyV2Template: Sendable {
    /// Whether the template takes IPv6 addresses (else IPv4).
    public let isIPv6: Bool
    private let bytes: [UInt8]
    /// Where the first CRC32C TLV's value is, if the header has one.
    private let crcOffset: Int?

    /// The header's length on the wire.
    public var count: Int { bytes.count }

    /// `header`: a v2 PROXY-command header with an IP address block; its addresses are placeholders.
    /// Nil for any other header.
    public init?(_ header: ProxyHeader) {
        guard header.version == .v2, header.command == .proxy,
            case .inet(let source, let destination) = header.addresses,
            source.ip.isIPv6 == destination.ip.isIPv6
        else { return nil }
        isIPv6 = source.ip.isIPv6
        (bytes, crcOffset) = header.encodedV2()
    }

    /// Writes the header for a connection from `source` to `destination` (both of the template's
    /// family) to `buffer`, which must hold `count` bytes. Returns `count`.
    public func write(source: IPEndpoint, destination: IPEndpoint, to buffer: UnsafeMutableRawPointer) -> Int {
        precondition(source.ip.isIPv6 == isIPv6 && destination.ip.isIPv6 == isIPv6, "address family of the template")
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        var offset = 16
        func put(_ byte: UInt8) {
            buffer.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
        func put(_ ip: IPAddress) {
            switch ip {
            case .v4(let address):
                // One by one: an array literal here could allocate.
                let (a, b, c, d) = address.bytes
                put(a)
                put(b)
                put(c)
                put(d)
            case .v6(let address):
                for byte in address.bytes { put(byte) }
            }
        }
        put(source.ip)
        put(destination.ip)
        put(UInt8(source.port >> 8))
        put(UInt8(source.port & 0xFF))
        put(UInt8(destination.port >> 8))
        put(UInt8(destination.port & 0xFF))
        if let crcOffset {
            buffer.storeBytes(of: 0, toByteOffset: crcOffset, as: UInt32.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: buffer, count: bytes.count))
            buffer.storeBytes(of: crc.bigEndian, toByteOffset: crcOffset, as: UInt32.self)
        }
        return bytes.count
    }
}
