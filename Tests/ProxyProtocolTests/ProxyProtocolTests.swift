import ProxyProtocol
import Testing

/// Hex with spaces and newlines allowed, for byte tables.
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { $0.isHexDigit }
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

let signature = "0d0a0d0a000d0a515549540a"

/// The PrivateLink capture of docs/proxy-protocol.md §6.
let privateLinkCapture = hex(
    signature + "21 11 0054"  // v2 PROXY, TCP4, length 84
        + "ac1f0771 ac1f0a1f c8f2 0050"  // 172.31.7.113:51442 -> 172.31.10.31:80
        + "03 0004 e8d6892d"  // CRC32C
        + "ea 0017 01 7670 6365 2d30 3864 3262 6631 3566 6163 3530 3031 6339"  // AWS, VPC endpoint id
        + "04 0024" + String(repeating: "00", count: 36))  // NOOP padding

func endpoint(_ text: String) -> IPEndpoint { IPEndpoint(text)! }

struct ValidVector: CustomStringConvertible, Sendable {
    var name: String
    var bytes: [UInt8]
    var check: @Sendable (ProxyHeader) -> Bool
    var description: String { name }
}

let validVectors: [ValidVector] = [
    ValidVector(
        name: "v1 TCP4", bytes: Array("PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\n".utf8),
        check: {
            $0.version == .v1 && $0.source == endpoint("198.51.100.22:35646")
                && $0.destination == endpoint("203.0.113.7:80")
        }),
    ValidVector(
        name: "v1 TCP6", bytes: Array("PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n".utf8),
        check: { $0.source == endpoint("[2001:db8::1]:4000") && $0.destination == endpoint("[2001:db8::2]:443") }),
    ValidVector(
        name: "v1 UNKNOWN", bytes: Array("PROXY UNKNOWN\r\n".utf8),
        check: { $0.addresses == .unspecified && $0.familyName == "UNKNOWN" }),
    ValidVector(
        name: "v2 PROXY TCP4 without TLVs",
        bytes: hex(signature + "21 11 000c" + "c0000201 c0000202 1f90 0050"),
        check: {
            $0.command == .proxy && $0.source == endpoint("192.0.2.1:8080")
                && $0.destination == endpoint("192.0.2.2:80") && $0.tlvs.isEmpty && $0.crc32c == .absent
        }),
    ValidVector(
        name: "v2 PROXY TCP6",
        bytes: hex(
            signature + "21 21 0024" + "20010db8000000000000000000000001" + "20010db8000000000000000000000002"
                + "1f90 01bb"),
        check: { $0.source == endpoint("[2001:db8::1]:8080") && $0.familyName == "TCP6" }),
    ValidVector(
        name: "v2 LOCAL UNSPEC", bytes: hex(signature + "20 00 0000"),
        check: { $0.command == .local && $0.addresses == .unspecified }),
    ValidVector(
        name: "NLB PrivateLink capture", bytes: privateLinkCapture,
        check: {
            $0.crc32c == .valid && $0.awsVPCEndpointID == "vpce-08d2bf15fac5001c9"
                && $0.source == endpoint("172.31.7.113:51442") && $0.destination == endpoint("172.31.10.31:80")
                && $0.tlvs.map(\.name) == ["PP2_TYPE_CRC32C", "PP2_TYPE_AWS", "PP2_TYPE_NOOP"]
        }),
    ValidVector(
        name: "NLB health-check LOCAL (TCP4 family, no address block)",
        bytes: ProxyHeader.awsHealthCheck().encoded(),
        check: { $0.command == .local && $0.crc32c == .valid && $0.tlvs.count == 2 && $0.familyName == "TCP4" }),
    ValidVector(
        name: "v2 unregistered TLV kept raw",
        bytes: hex(signature + "21 11 0010" + "c0000201 c0000202 1f90 0050" + "e1 0001 ff"),
        check: { $0.tlvs == [ProxyTLV(type: 0xE1, value: [0xFF])] && $0.tlvs[0].name == "PP2_TYPE_0xE1" }),
]

struct InvalidVector: CustomStringConvertible, Sendable {
    var name: String
    var bytes: [UInt8]
    var error: ProxyProtocolError
    var description: String { name }
}

let invalidVectors: [InvalidVector] = [
    InvalidVector(
        name: "v1 double space", bytes: Array("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n".utf8),
        error: .v1Malformed("expected 'PROXY TCP4 <src> <dst> <sport> <dport>' with single spaces")),
    InvalidVector(
        name: "v1 leading zero port", bytes: Array("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n".utf8),
        error: .v1Malformed("source port '01' is not 0-65535 without leading zeros")),
    InvalidVector(
        name: "v1 IPv6 address under TCP4", bytes: Array("PROXY TCP4 ::1 5.6.7.8 1 2\r\n".utf8),
        error: .v1Malformed("source address '::1' is not IPv4")),
    InvalidVector(
        name: "v1 no CRLF in 107 bytes",
        bytes: Array(("PROXY UNKNOWN " + String(repeating: "x", count: 93)).utf8), error: .v1LineTooLong),
    InvalidVector(
        name: "v1 bare LF", bytes: Array("PROXY UNKNOWN\n".utf8),
        error: .v1Malformed("line does not end with CRLF")),
    InvalidVector(
        name: "v2 version 1", bytes: hex(signature + "11 11 000c"), error: .v2UnsupportedVersion(1)),
    InvalidVector(
        name: "v2 command 2", bytes: hex(signature + "22 11 000c"), error: .v2UnsupportedCommand(2)),
    InvalidVector(
        name: "v2 family 0x41", bytes: hex(signature + "21 41 000c"), error: .v2UnsupportedFamily(0x41)),
    InvalidVector(
        name: "v2 TCP4 length 8", bytes: hex(signature + "21 11 0008" + "0000000000000000"),
        error: .v2LengthTooShort(declared: 8, needed: 12)),
    InvalidVector(
        name: "v2 truncated TLV",
        bytes: hex(signature + "21 11 0010" + "c0000201 c0000202 1f90 0050" + "04 0005 00"),
        error: .v2TruncatedTLV(offset: 28)),
    InvalidVector(
        name: "v2 CRC32C mismatch",
        bytes: hex(signature + "21 11 0013" + "c0000201 c0000202 1f90 0050" + "03 0004 00000000"),
        error: .v2ChecksumMismatch(expected: 0x64C2_8999, received: 0)),
]

@Suite struct ProxyHeaderParsing {
    @Test("CRC32C of the check string") func crcCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test(arguments: validVectors) func parsesValid(vector: ValidVector) throws {
        let result = try ProxyHeaderParser().parse(vector.bytes + Array("tail".utf8))
        guard case .header(let header, let consumed) = result else {
            Issue.record("\(vector.name): \(result)")
            return
        }
        #expect(consumed == vector.bytes.count)
        #expect(vector.check(header), "\(header)")
        // Round trip: what we parsed encodes to the very same bytes.
        #expect(header.encoded() == vector.bytes)
    }

    @Test(arguments: validVectors) func parsesValidOneByteAtATime(vector: ValidVector) throws {
        var decoder = ProxyHeaderDecoder()
        for (index, byte) in vector.bytes.enumerated() {
            let result = try decoder.feed([byte])
            if index < vector.bytes.count - 1 {
                #expect(result == .needMoreData, "after \(index + 1) bytes")
            } else {
                guard case .header(_, let consumed) = result else {
                    Issue.record("\(result)")
                    return
                }
                #expect(consumed == vector.bytes.count)
            }
        }
    }

    /// Spec §2.2: a LOCAL header's block is discarded whatever it holds; its address block is never
    /// read as TLVs. (Neither round-trips: the block is not kept.)
    @Test(arguments: [
        (
            "LOCAL TCP4, address block then bytes that are no TLVs",
            hex(signature + "20 11 0011" + "c0000201 c0000202 1f90 0050" + "ff ffff 00 01")
        ),
        (
            // 01 0009 + 9 bytes: the address block alone would read as one ALPN TLV.
            "LOCAL TCP4, an address block shaped like a TLV",
            hex(signature + "20 11 000c" + "01 0009 c00002 01c000 0202 00")
        ),
        ("LOCAL UNIX, block shorter than a UNIX address block", hex(signature + "20 31 0004" + "2f746d70")),
        (
            "LOCAL TCP4, a TLV-shaped block with a CRC32C that does not match",
            hex(signature + "20 11 0007" + "03 0004 00000001")
        ),
    ])
    func localBlocksAreDiscarded(name: String, bytes: [UInt8]) throws {
        let result = try ProxyHeaderParser().parse(bytes + Array("tail".utf8))
        guard case .header(let header, let consumed) = result else {
            Issue.record("\(name): \(result)")
            return
        }
        #expect(consumed == bytes.count)
        #expect(header.command == .local && header.addresses == .unspecified)
        #expect(header.tlvs.isEmpty, "\(name): \(header.tlvs)")
        #expect(header.crc32c == .absent)
    }

    /// With no address block in the family (UNSPEC), a LOCAL header's TLVs are reported.
    @Test func localUnspecTLVsAreReported() throws {
        let bytes = hex(signature + "20 00 0005" + "e1 0002 abcd")
        guard case .header(let header, _) = try ProxyHeaderParser().parse(bytes) else {
            Issue.record("not a header")
            return
        }
        #expect(header.tlvs == [ProxyTLV(type: 0xE1, value: [0xAB, 0xCD])])
    }

    @Test(arguments: invalidVectors) func rejectsInvalid(vector: InvalidVector) {
        #expect(throws: vector.error) { try ProxyHeaderParser().parse(vector.bytes) }
    }

    @Test func notAHeader() throws {
        #expect(try ProxyHeaderParser().parse(Array("GET / HTTP/1.1\r\n".utf8)) == .notProxyHeader)
        #expect(try ProxyHeaderParser().parse(Array("PROXX".utf8)) == .notProxyHeader)
        #expect(try ProxyHeaderParser().parse([0x0D, 0x0A, 0x0D, 0x0B]) == .notProxyHeader)
        #expect(try ProxyHeaderParser().parse(Array("PROX".utf8)) == .needMoreData)
    }

    @Test func v1LimitIs107BytesIncludingCRLF() throws {
        let at107 = Array(("PROXY UNKNOWN " + String(repeating: "x", count: 91) + "\r\n").utf8)
        #expect(at107.count == 107)
        guard case .header(_, 107) = try ProxyHeaderParser().parse(at107) else {
            Issue.record("107 bytes should parse")
            return
        }
        let at108 = Array(("PROXY UNKNOWN " + String(repeating: "x", count: 92) + "\r\n").utf8)
        #expect(throws: ProxyProtocolError.v1LineTooLong) { try ProxyHeaderParser().parse(at108) }
    }

    @Test func v2MaximumLengthAtNAndNPlusOne() throws {
        let header = ProxyHeader(
            version: .v2,
            addresses: .inet(source: endpoint("192.0.2.1:1"), destination: endpoint("192.0.2.2:2")),
            tlvs: [ProxyTLV(.noop, value: [UInt8](repeating: 0, count: 100))])
        let bytes = header.encoded()
        let parser = ProxyHeaderParser(maximumV2Length: bytes.count)
        guard case .header = try parser.parse(bytes) else {
            Issue.record("a header of exactly the maximum should parse")
            return
        }
        let smaller = ProxyHeaderParser(maximumV2Length: bytes.count - 1)
        #expect(throws: ProxyProtocolError.v2TooLong(length: bytes.count, maximum: bytes.count - 1)) {
            try smaller.parse(bytes)
        }
    }
}

@Suite struct ProxyHeaderEncoding {
    @Test func awsShapedIPv4HeaderIs100Bytes() {
        let bytes = ProxyHeader.aws(source: endpoint("172.31.7.113:51442"), destination: endpoint("172.31.10.31:80"))
            .encoded()
        #expect(bytes.count == 100)
        #expect(Array(bytes[12..<16]) == [0x21, 0x11, 0x00, 0x54])
        #expect(Array(bytes[28..<31]) == [0x03, 0x00, 0x04])  // CRC32C first
        #expect(Array(bytes[35..<38]) == [0x04, 0x00, 0x3E])  // then NOOP, 62 bytes
    }

    @Test func awsShapedPrivateLinkHeaderMatchesTheCapture() {
        let header = ProxyHeader.aws(
            source: endpoint("172.31.7.113:51442"), destination: endpoint("172.31.10.31:80"),
            vpcEndpointID: "vpce-08d2bf15fac5001c9")
        #expect(header.encoded() == privateLinkCapture)
    }

    @Test func awsHealthCheckHeaderIsTheObservedHundredBytes() {
        let bytes = ProxyHeader.awsHealthCheck().encoded()
        #expect(bytes.count == 100)
        #expect(Array(bytes[12..<19]) == [0x20, 0x11, 0x00, 0x54, 0x03, 0x00, 0x04])
        #expect(Array(bytes[23..<26]) == [0x04, 0x00, 0x4A])
        #expect(bytes[26...].allSatisfy { $0 == 0 })
    }

    @Test func v1Lines() {
        let v4 = ProxyHeader(
            version: .v1,
            addresses: .inet(source: endpoint("198.51.100.22:35646"), destination: endpoint("203.0.113.7:80")))
        #expect(String(decoding: v4.encoded(), as: UTF8.self) == "PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\n")
        let v6 = ProxyHeader(
            version: .v1,
            addresses: .inet(source: endpoint("[::1]:5"), destination: endpoint("[2001:db8::1]:80")))
        #expect(String(decoding: v6.encoded(), as: UTF8.self) == "PROXY TCP6 ::1 2001:db8::1 5 80\r\n")
    }
}

@Suite struct Addresses {
    @Test func ipv6TextForms() {
        #expect(IPv6Address("2001:db8::1")?.description == "2001:db8::1")
        #expect(IPv6Address("2001:0db8:0:0:0:0:0:1")?.description == "2001:db8::1")
        #expect(IPv6Address("::")?.description == "::")
        #expect(IPv6Address("::ffff:127.0.0.1")?.mappedIPv4 == IPv4Address(127, 0, 0, 1))
        #expect(IPv6Address("1:2:3:4:5:6:7:8")?.description == "1:2:3:4:5:6:7:8")
        #expect(IPv6Address("1::2::3") == nil)
        #expect(IPv6Address("1:2:3:4:5:6:7:8:9") == nil)
        #expect(IPv4Address("127.0.0.01") == nil)
        #expect(IPv4Address("256.0.0.1") == nil)
        #expect(IPEndpoint("[::1]:80")?.description == "[::1]:80")
        #expect(IPEndpoint("127.0.0.1:65536") == nil)
    }
}
